"""Small real file systems for the fault tests: a size-limited tmpfs to fill, free, or remount read-only.

Mounting needs root (CAP_SYS_ADMIN); where it is refused the test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MB mounted at ``path`` for the block; skips the test where mounting is refused."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    path.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def remount(path: Path, mode: str) -> None:
    """Make the tmpfs at ``path`` read-only (``ro``) or writable again (``rw``)."""
    done = _mount("-o", f"remount,{mode}", str(path))
    assert done.returncode == 0, f"remount {mode} of {path} failed: {done.stderr.strip()}"


def free_bytes(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def fill(disk: Path, leave_mb: float = 0.0) -> Path:
    """Take the free space of the file system at ``disk`` down to ``leave_mb`` with one file (delete it to free)."""
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    leave = int(leave_mb * 1024 * 1024)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1):
            block = b"\0" * chunk
            while free_bytes(disk) - chunk >= leave:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    if not leave:
        assert free_bytes(disk) == 0
    return filler
