"""Content-addressed image files: the path is derived from the sha256 of the bytes only.

A file is written to a temporary name, fsynced, renamed into place and its
directory fsynced, so by the time a database row names it, it is on disk.
Identical bytes are stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

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


class ImageStore:
    """Write-once image blobs under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

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
            return digest
        created: list[Path] = []
        parent = final.parent
        for d in (parent.parent.parent, parent.parent, parent):
            if not d.is_dir():
                d.mkdir(parents=True, exist_ok=True)
                created.append(d)
        tmp = parent / f".{digest}.{secrets.token_hex(4)}.tmp"
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
