"""Frame sources: folder replay, video files, the synthetic bench, reconnecting cameras, the spec factory."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from station.sources import SourceError, open_source
from station.sources.camera import OpenCVSource
from station.sources.folder import FolderSource
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from station.sources.video import VideoFileSource
from tests.station.standin import FlakyCapture, StandinBench, bench_factory


def _write_images(folder: Path, values: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(values):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((32, 40, 3), v, np.uint8))


def test_folder_replays_in_name_order_and_loops(tmp_path: Path) -> None:
    _write_images(tmp_path, [10, 20, 30])
    (tmp_path / "notes.txt").write_text("not an image")
    src = FolderSource(tmp_path, "cam3")
    src.open()
    values = [int(src.read().image[0, 0, 0]) for _ in range(7)]  # type: ignore[union-attr]
    assert values == [10, 20, 30, 10, 20, 30, 10]
    assert src.healthy and src.camera_id == "cam3"


def test_folder_without_loop_ends_and_skips_unreadable(tmp_path: Path) -> None:
    _write_images(tmp_path, [10, 20])
    (tmp_path / "001b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    src = FolderSource(tmp_path, loop=False)
    src.open()
    got = []
    while (f := src.read()) is not None:
        got.append(int(f.image[0, 0, 0]))
    assert got == [10, 20]
    assert src.state == "ended"
    assert "unreadable" in (src.last_error or "")


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda p: p / "missing", FileNotFoundError),
        (lambda p: p, SourceError),  # exists but holds no image
    ],
)
def test_folder_errors_are_clear(tmp_path: Path, make, error) -> None:
    with pytest.raises(error):
        FolderSource(make(tmp_path)).open()


def test_video_file_plays_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "shift.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for v in (40, 120, 200):
        writer.write(np.full((48, 64, 3), v, np.uint8))
    writer.release()
    src = VideoFileSource(path, "cam1")
    src.open()
    means = [float(src.read().image.mean()) for _ in range(5)]  # type: ignore[union-attr]
    assert [round(m / 40) for m in means] == [1, 3, 5, 1, 3]  # MJPEG is lossy: compare coarsely
    once = VideoFileSource(path, loop=False)
    once.open()
    assert sum(1 for _ in iter(once.read, None)) == 3
    assert once.state == "ended"


def test_video_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VideoFileSource(tmp_path / "nope.mp4").open()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"definitely not a video")
    with pytest.raises(SourceError, match="cannot decode"):
        VideoFileSource(bad).open()


def _synthetic(seed: int = 0, **kw) -> SyntheticBenchSource:
    schedule = BenchSchedule(empty_s=0.4, enter_s=0.3, still_s=0.5, leave_s=0.3)
    src = SyntheticBenchSource("cam0", seed=seed, fps=10, schedule=schedule, bench=StandinBench(seed), **kw)
    src.open()
    return src


def test_synthetic_bench_cycles_through_its_phases() -> None:
    src = _synthetic()
    phases = []
    for _ in range(src.cycle_frames + 2):
        src.read()
        phases.append(src.phase)
    assert phases[:4] == ["empty"] * 4
    assert phases[4:7] == ["enter"] * 3
    assert phases[7:12] == ["still"] * 5
    assert phases[12:15] == ["leave"] * 3
    assert phases[15:] == ["empty", "empty"]
    assert src.cycle == 1


def test_synthetic_bench_is_deterministic_per_seed_and_noisy() -> None:
    a, b, c = _synthetic(1), _synthetic(1), _synthetic(2)
    fa = [a.read().image for _ in range(10)]  # type: ignore[union-attr]
    fb = [b.read().image for _ in range(10)]  # type: ignore[union-attr]
    fc = [c.read().image for _ in range(10)]  # type: ignore[union-attr]
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert not np.array_equal(fa[9], fc[9])
    # sensor noise: two frames of the still item differ a little, everywhere, but only a little
    diff = cv2.absdiff(fa[8], fa[9]).astype(np.float32)
    assert 0.5 < diff.mean() < 4.0


def test_synthetic_item_enters_rests_and_leaves() -> None:
    src = _synthetic()
    empty = src.render(0)
    scene = {name: src.render(i) for i, name in ((5, "enter"), (8, "still"), (13, "leave"))}
    still_changed = (cv2.absdiff(scene["still"], empty).max(axis=2) > 10).mean()
    assert still_changed > 0.03
    # the item moves: the entering and leaving scenes differ from the resting one
    for name in ("enter", "leave"):
        assert (cv2.absdiff(scene[name], scene["still"]).max(axis=2) > 10).mean() > 0.01
    # rest time is recorded on the first still frame only
    times = iter([100.0, 200.0, 300.0])
    timed = _synthetic(clock=lambda: next(times))
    for _ in range(12):
        timed.read()
    assert timed.last_rest_at == 100.0


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_camera_reconnects_with_exponential_backoff() -> None:
    plan: dict = {"down": True}
    clock = _Clock()
    src = OpenCVSource(
        0,
        capture_factory=lambda _t: FlakyCapture(plan),
        clock=clock,
        backoff_initial_s=0.5,
        backoff_max_s=4.0,
        failures_before_reconnect=2,
    )
    src.open()
    assert not src.healthy and src.state == "reconnecting" and plan["opens"] == 1
    # attempts happen only when the backoff delay has passed: 0.5, 1, 2, 4, 4 s apart
    attempts_at = []
    for step in range(int(20 / 0.25)):
        clock.t = step * 0.25
        before = plan["opens"]
        assert src.read() is None
        if plan["opens"] != before:
            attempts_at.append(clock.t)
    gaps = np.diff([0.0, *attempts_at]).tolist()
    assert gaps[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    # the camera comes back: the next attempt connects and frames flow
    plan["down"] = False
    clock.t += 4.0
    frame = src.read()
    assert frame is not None and src.healthy and src.reconnects == 1
    # it stops sending: after two bad reads it is dropped and retried after the initial delay again
    plan["broken"] = True
    assert src.read() is None and src.healthy
    assert src.read() is None and src.state == "reconnecting"
    assert "stopped sending" in (src.last_error or "")
    assert src.retry_in_s == pytest.approx(0.5)
    plan["broken"] = False
    clock.t += 0.5
    assert src.read() is not None and src.reconnects == 2


def test_camera_url_credentials_are_not_shown() -> None:
    src = OpenCVSource("rtsp://user:secret@10.0.0.5/stream", capture_factory=lambda _t: FlakyCapture({"down": True}))
    src.open()
    assert "secret" not in (src.last_error or "") and "10.0.0.5" in (src.last_error or "")


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("synthetic", SyntheticBenchSource),
        ("synthetic?seed=4&still=1.5&empty=0.5", SyntheticBenchSource),
        ("0", OpenCVSource),
        ("2", OpenCVSource),
        ("rtsp://10.0.0.5:554/stream1", OpenCVSource),
        ("http://10.0.0.5/video.mjpg", OpenCVSource),
        ("/dev/video0", OpenCVSource),
    ],
)
def test_open_source_parses_specs(spec: str, kind: type) -> None:
    src = open_source(spec, "cam1", bench_factory=bench_factory)
    assert isinstance(src, kind) and src.camera_id == "cam1"


def test_open_source_files_and_folders(tmp_path: Path) -> None:
    _write_images(tmp_path / "replay", [1])
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    assert isinstance(open_source(str(tmp_path / "replay")), FolderSource)
    assert isinstance(open_source(str(video)), VideoFileSource)
    synthetic = open_source("synthetic?seed=4&still=1.5", bench_factory=bench_factory)
    assert isinstance(synthetic, SyntheticBenchSource)
    assert synthetic.seed == 4 and synthetic.schedule.still_s == 1.5


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("", SourceError, "empty"),
        ("synthetic?colour=red", SourceError, "unknown synthetic"),
        ("synthetic?still=abc", SourceError, "bad synthetic"),
        ("synthetic?still=0", SourceError, "still must be"),
        ("missing-video.mp4", FileNotFoundError, "not found"),
        ("webcam please", SourceError, "not 'synthetic'"),
    ],
)
def test_open_source_refuses_bad_specs(spec: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        open_source(spec, bench_factory=bench_factory)


def test_open_source_refuses_a_single_image(tmp_path: Path) -> None:
    _write_images(tmp_path, [5])
    with pytest.raises(SourceError, match="single image"):
        open_source(str(tmp_path / "000.png"))
