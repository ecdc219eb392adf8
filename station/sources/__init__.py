"""Frame sources behind one interface: cameras, video files, image folders, the synthetic bench.

The station only needs :class:`FrameSource` (what it reads) and :func:`open_source`
(a camera spec from the config -> the source it names); each kind lives in its own
module (``camera``, ``video``, ``folder``, ``synthetic``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspector.data.formats import IMAGE_SUFFIXES
from station.sources import synthetic
from station.sources.base import FrameSource, SourceError, mask_url
from station.sources.camera import URL_SCHEMES, Capture, OpenCVSource
from station.sources.folder import FolderSource
from station.sources.synthetic import BenchLike
from station.sources.video import VIDEO_SUFFIXES, VideoFileSource

__all__ = ["FrameSource", "SourceError", "mask_url", "open_source"]


def open_source(
    spec: str,
    camera_id: str = "cam0",
    *,
    fps: float = 20.0,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    bench_factory: Callable[[int, tuple[int, int]], BenchLike] | None = None,
    capture_factory: Callable[[int | str], Capture] | None = None,
    loop: bool = True,
) -> FrameSource:
    """Build (not open) the source a spec names.

    ``synthetic`` (options: ``synthetic?seed=3&still=2&empty=1``), a device index
    (``0``), a device path (``/dev/video0``), a stream URL (``rtsp://``, ``http://``),
    a video file, or a folder of images.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty camera source spec")
    if spec == "synthetic" or spec.startswith("synthetic?"):
        kw: dict[str, Any] = {"bench_factory": bench_factory} if bench_factory else {}
        return synthetic.from_spec(spec, camera_id, seed, (width, height), fps, **kw)
    cv_kw: dict[str, Any] = {"width": width, "height": height, "fps": fps}
    if capture_factory is not None:
        cv_kw["capture_factory"] = capture_factory
    if spec.isdigit():
        return OpenCVSource(int(spec), camera_id, **cv_kw)
    if spec.lower().startswith(URL_SCHEMES):
        return OpenCVSource(spec, camera_id, **cv_kw)
    if spec.startswith("/dev/video"):
        return OpenCVSource(spec, camera_id, **cv_kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, camera_id, loop=loop)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{path} is a single image; give the folder that holds it to replay images")
        return VideoFileSource(path, camera_id, loop=loop)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise FileNotFoundError(f"video file not found: {path}")
    raise SourceError(
        f"camera source {mask_url(spec)!r} is not 'synthetic', a device index, a stream URL, a video file or a folder"
    )
