"""Content-addressed image storage: an image is named by the sha256 of its bytes only.

:class:`ImageStore` is the interface the station uses; :class:`FolderImageStore`
keeps the files in a folder: the station's own by default, or one folder that
every bench of a fleet mounts (the same implementation, pointed elsewhere).
A file is written to a temporary name, fsynced, renamed into place and its
directory fsynced, so by the time a database row names it, it is on disk, and a
reader on any station sees the whole file or none. Identical bytes are stored
once, whichever station stores them and however many do it at the same time.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable

_SHA256 = re.compile(r"[0-9a-f]{64}")

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@runtime_checkable
class ImageStore(Protocol):
    """Where the original views live, by digest; written once, never changed."""

    @property
    def location(self) -> str:
        """Where the images are, for people (readiness checks, logs)."""
        ...

    def open(self) -> None:
        """Get ready to store (create the folder, connect)."""

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its sha256; storing the same bytes again is a no-op."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes of ``digest``; FileNotFoundError when there are none."""
        ...

    def exists(self, digest: str) -> bool: ...

    def path_for(self, digest: str) -> Path:
        """A local file holding the bytes of ``digest`` (for tools that want a path)."""
        ...

    def check_writable(self) -> None:
        """Raise OSError when nothing can be stored now."""

    def remove(self, digest: str) -> None:
        """Delete the bytes of ``digest`` (a view whose inspection was never stored); no error if absent."""


class FolderImageStore:
    """Write-once image blobs under ``root/ab/cd/<sha256>``, safe for many writers on one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        """The file for a digest; anything but 64 lowercase hex characters is refused."""
        if not _SHA256.fullmatch(digest):
            raise ValueError("an image digest is 64 lowercase hex characters")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its sha256 (a no-op when it is already stored)."""
        digest = sha256_hex(data)
        final = self.path_for(digest)
        if final.is_file() and final.stat().st_size == len(data):
            try:
                os.utime(final)  # in use again: the retention pruner leaves a recently stored file alone
                return digest
            except FileNotFoundError:
                pass  # pruned meanwhile: write it anew
            except OSError:
                return digest  # stored, but not ours to touch (another bench's file on a shared folder)
        created: list[Path] = []
        parent = final.parent
        for d in (parent.parent.parent, parent.parent, parent):
            if not d.is_dir():
                d.mkdir(parents=True, exist_ok=True)
                created.append(d)
        # A name of its own per writer: two stations storing the same image never write one file together.
        tmp = parent / f".{digest}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        try:
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(parent)
        for d in created:  # a new directory entry must reach the disk too
            _fsync_dir(d.parent)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def remove(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def check_writable(self) -> None:
        """Raise OSError when a file cannot be created and synced in the store."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".probe.{secrets.token_hex(4)}"
        try:
            with probe.open("wb") as f:
                f.write(b"ok")
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
