"""What the station leaves on disk and shows of its cameras, read as someone looking for secrets would.

The database holds webhook secrets and key hashes: its folder is private and its files
are the owner's alone, whatever the umask. The first-start key file is written only to a
new file, never through a link planted at its path. Camera URLs carry passwords: none
reaches the page, the API, the logs or an error.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from inspector.config import StorageConfig
from inspector.store import Store, bootstrap_keys
from inspector.store.keys import count_live
from station.cameras import Cameras
from station.sources import SourceError, mask_url, open_source
from station.sources.camera import Capture, OpenCVSource


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are world-readable unless the station says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def opened(data_dir: Path) -> Store:
    store = Store(StorageConfig(data_dir=data_dir)).open()
    with store.db.write() as s:  # a write: the -wal and -shm files exist while the store is open
        s.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
    return store


# ------------------------------------------------------------------ file modes


def fresh(tmp_path: Path) -> Path:
    return tmp_path / "data"


def loose(tmp_path: Path) -> Path:
    """A data folder and database an older version left world-readable."""
    data = tmp_path / "data"
    opened(data).close()
    data.chmod(0o755)
    (data / "inspector.db").chmod(0o644)
    return data


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("make", [fresh, loose], ids=["new", "left-open-before"])
def test_the_data_folder_and_database_are_the_owners_alone(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    data = make(tmp_path)
    store = opened(data)
    try:
        db = data / "inspector.db"
        expected = {
            data: 0o700,
            data / "images": 0o700,
            db: 0o600,
            db.with_name("inspector.db-wal"): 0o600,
            db.with_name("inspector.db-shm"): 0o600,
        }
        assert {p.name: mode(p) for p in expected} == {p.name: m for p, m in expected.items()}
    finally:
        store.close()


# ------------------------------------------------------------- bootstrap keys


def planted_link(data: Path, target: Path) -> None:
    target.write_text("the operator's own file\n")
    (data / "bootstrap-keys.txt").symlink_to(target)


def dangling_link(data: Path, target: Path) -> None:
    (data / "bootstrap-keys.txt").symlink_to(target)


def planted_file(data: Path, target: Path) -> None:
    (data / "bootstrap-keys.txt").write_text("admin key_x insp_planted\n")


@pytest.mark.parametrize("plant", [planted_link, dangling_link, planted_file])
def test_the_key_file_is_never_written_through_what_was_planted(
    tmp_path: Path, plant: Callable[[Path, Path], None]
) -> None:
    data, target = tmp_path / "data", tmp_path / "elsewhere.txt"
    store = opened(data)
    try:
        plant(data, target)
        before = target.read_text() if target.exists() else None
        with pytest.raises(FileExistsError, match=r"bootstrap-keys\.txt already exists"):
            bootstrap_keys(store)
        assert (target.read_text() if target.exists() else None) == before, "the link's target is untouched"
        with store.db.read() as s:
            assert count_live(s) == 0, "no key was made: the next start tries again"
    finally:
        store.close()


@pytest.mark.usefixtures("umask_022")
def test_the_key_file_is_new_and_0600(tmp_path: Path) -> None:
    store = opened(tmp_path / "data")
    try:
        path = bootstrap_keys(store)
        assert path is not None and mode(path) == 0o600 and not path.is_symlink()
        assert [line.split()[0] for line in path.read_text().splitlines() if not line.startswith("#")] == [
            "admin",
            "operator",
        ]
        assert bootstrap_keys(store) is None, "keys exist: nothing is written again"
    finally:
        store.close()


# ------------------------------------------------------------- camera URLs

MASKED = [
    # (spec, shown, secrets that must not appear)
    ("rtsp://admin:p@ss@cam/stream", "rtsp://***@cam/stream", ["admin", "p@ss", "ss@"]),
    ("rtsp://admin:hunter2@10.0.0.9:554/live", "rtsp://***@10.0.0.9:554/live", ["hunter2"]),
    ("rtsp://viewer@cam/s", "rtsp://***@cam/s", ["viewer"]),
    ("http://cam/video.cgi?user=admin&pwd=hunter2", "http://cam/video.cgi?user=***&pwd=***", ["admin", "hunter2"]),
    (
        "http://cam/snap?PASSWORD=x1y2&Token=t0k&channel=1",
        "http://cam/snap?PASSWORD=***&Token=***&channel=1",
        ["x1y2", "t0k"],
    ),
    (
        "https://cam/a?auth=a1&key=k1&secret=s1&pass=p1&access_token=z9",
        "https://cam/a?auth=***&key=***&secret=***&pass=***&access_token=***",
        ["a1", "k1", "s1", "p1", "z9"],
    ),
    ("http://u:pw@cam/x?apikey=k2&fps=5", "http://***@cam/x?apikey=***&fps=5", ["pw", "k2"]),
    ("rtsp://cam/stream?channel=2", "rtsp://cam/stream?channel=2", []),
    ("synthetic?seed=3&still=2", "synthetic?seed=3&still=2", []),
    ("/dev/video0", "/dev/video0", []),
    ("0", "0", []),
]


@pytest.mark.parametrize(("spec", "shown", "secrets"), MASKED, ids=[m[0] for m in MASKED])
def test_camera_urls_are_masked(spec: str, shown: str, secrets: list[str]) -> None:
    assert mask_url(spec) == shown
    for secret in secrets:
        assert secret not in shown.replace("***", "")


def failing_capture(target: int | str) -> Capture:
    """OpenCV as it fails on a stream: the error quotes the URL it was given."""
    raise RuntimeError(f"could not open {target}: connection refused")


def test_a_failing_camera_shows_no_password_on_the_page_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    spec = "rtsp://admin:p@ss@cam/stream?pwd=hunter2"
    source = OpenCVSource(spec, "cam0", capture_factory=failing_capture)
    cameras = Cameras([source], specs=[spec], on_frame=lambda: None, changed=lambda: None)
    with caplog.at_level(logging.DEBUG):
        source.open()
    shown = [source.description, source.last_error or "", str(cameras.status()), caplog.text]
    assert "could not open rtsp://***@cam/stream?pwd=***" in (source.last_error or "")
    with pytest.raises(SourceError) as refused:
        open_source("rtsq://admin:p@ss@cam/stream")
    shown.append(str(refused.value))
    for seen in shown:
        assert "p@ss" not in seen and "hunter2" not in seen and "admin" not in seen, seen
