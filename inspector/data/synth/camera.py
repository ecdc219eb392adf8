"""Camera effects as torchvision v2 transforms, so every box follows every transform.

The transforms take their parameters at construction (drawn from the image's own
numpy generator) instead of from torch's global generator: an image is the same
for the same seed whatever ran before it, in any process. They act on
``tv_tensors.Image`` (a batch of the final scene and its defect-free twin, which
share every parameter and every noise sample) and on ``tv_tensors.BoundingBoxes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from inspector.data.synth.common import F32


class _Seeded(v2.Transform):  # type: ignore[misc]  # torchvision ships no type information
    """A v2 transform whose randomness was fixed when it was built."""

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {}


class Homography(_Seeded):
    """Perspective and in-plane rotation of the camera over the bench, one resampling for both."""

    def __init__(self, startpoints: list[list[float]], endpoints: list[list[float]]) -> None:
        super().__init__()
        self.startpoints = startpoints
        self.endpoints = endpoints

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(
            F.perspective,
            inpt,
            self.startpoints,
            self.endpoints,
            interpolation=v2.InterpolationMode.BILINEAR,
            fill=None,
        )


def _filter_planes(inpt: tv_tensors.Image, fn: Any) -> tv_tensors.Image:
    """Apply a 2-D OpenCV filter to every plane of an image batch (ten times quicker than torch's
    depthwise convolution on a CPU, which would eat most of the time budget)."""
    x = inpt.as_subclass(torch.Tensor).contiguous()
    planes = x.reshape(-1, *x.shape[-2:]).numpy()
    out = np.stack([fn(p) for p in planes]).reshape(x.shape)
    return tv_tensors.wrap(torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)), like=inpt)


class Defocus(_Seeded):
    """Out-of-focus blur (a Gaussian point spread)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image) or self.sigma < 0.3:
            return inpt
        k = int(self.sigma * 3) * 2 + 1
        return _filter_planes(inpt, lambda p: cv2.GaussianBlur(p, (k, k), self.sigma, borderType=cv2.BORDER_REFLECT))


class MotionBlur(_Seeded):
    """A short straight smear: the item or the operator's hand moved during the exposure."""

    def __init__(self, length: float, angle_deg: float) -> None:
        super().__init__()
        self.length = float(length)
        self.angle_deg = float(angle_deg)

    def kernel(self) -> F32:
        n = max(3, int(np.ceil(self.length)) | 1)
        k = np.zeros((n, n), np.float32)
        c = n // 2
        a = np.deg2rad(self.angle_deg)
        d = np.array([np.cos(a), np.sin(a)]) * self.length / 2
        cv2.line(k, (round(c - d[0]), round(c - d[1])), (round(c + d[0]), round(c + d[1])), 1.0, 1)
        return np.asarray(k / max(float(k.sum()), 1e-6), np.float32)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image) or self.length < 1.5:
            return inpt
        k = self.kernel()
        return _filter_planes(inpt, lambda p: cv2.filter2D(p, -1, k, borderType=cv2.BORDER_REPLICATE))


class ColourCast(_Seeded):
    """White balance, exposure, contrast and saturation of the camera's processing."""

    def __init__(
        self, gains: tuple[float, float, float], brightness: float, contrast: float, saturation: float
    ) -> None:
        super().__init__()
        self.gains = gains  # R, G, B
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        g = torch.tensor(self.gains, dtype=inpt.dtype).view(3, 1, 1)
        x = (inpt.as_subclass(torch.Tensor) * g).clamp_(0, 1)
        # contrast about a fixed grey, as a camera's tone curve does (v2's adjust_contrast pivots on the
        # picture's own mean, which would let a defect shift the whole frame)
        x = ((x - 0.45) * self.contrast + 0.45).clamp_(0, 1)
        out = F.adjust_brightness(tv_tensors.wrap(x, like=inpt), self.brightness)
        return F.adjust_saturation(out, self.saturation)


class SensorNoise(_Seeded):
    """Shot and read noise; the same noise sample for every image of the batch."""

    def __init__(self, noise: F32, read: float, shot: float) -> None:
        super().__init__()
        self.noise = noise  # 3 x H x W standard normal
        self.read = float(read)
        self.shot = float(shot)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        x = inpt.as_subclass(torch.Tensor)
        sigma = torch.sqrt(self.read**2 + self.shot**2 * x.clamp(0, 1))
        out = (x + sigma * torch.from_numpy(self.noise)).clamp_(0, 1)
        return tv_tensors.wrap(out, like=inpt)


class Jpeg(_Seeded):
    """Compression artefacts of an IP camera stream (OpenCV's codec; torchvision's is deprecated)."""

    def __init__(self, quality: int) -> None:
        super().__init__()
        self.quality = int(quality)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image) or self.quality >= 100:
            return inpt
        x = inpt.as_subclass(torch.Tensor)
        u8 = (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
        flat = u8.reshape(-1, 3, *u8.shape[-2:])
        out = np.empty(flat.shape, np.float32)
        for i, chw in enumerate(flat):
            ok, buf = cv2.imencode(
                ".jpg", np.ascontiguousarray(chw.transpose(1, 2, 0)), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
            )
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            dec = np.asarray(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), np.float32)
            out[i] = dec.transpose(2, 0, 1) / 255.0
        return tv_tensors.wrap(torch.from_numpy(out.reshape(x.shape)), like=inpt)


@dataclass(frozen=True)
class CameraParams:
    """One exposure's camera: pose (fixed per bench) and optics and processing (per picture)."""

    startpoints: list[list[float]]
    endpoints: list[list[float]]
    defocus: float
    motion: float
    motion_angle: float
    gains: tuple[float, float, float]
    brightness: float
    contrast: float
    saturation: float
    read_noise: float
    shot_noise: float
    jpeg_quality: int
    noise_seed: int

    def pipeline(self, h: int, w: int) -> v2.Compose:
        flat = np.empty((3 * h, w), np.float32)  # 2-D: OpenCV would read a 3-D array as channels
        cv2.setRNGSeed(self.noise_seed & 0x7FFFFFFF)
        cv2.randn(flat, np.zeros(1), np.ones(1))
        noise = flat.reshape(3, h, w)
        return v2.Compose(
            [
                Homography(self.startpoints, self.endpoints),
                Defocus(self.defocus),
                MotionBlur(self.motion, self.motion_angle),
                ColourCast(self.gains, self.brightness, self.contrast, self.saturation),
                SensorNoise(noise, self.read_noise, self.shot_noise),
                Jpeg(self.jpeg_quality),
            ]
        )


def apply(
    params: CameraParams, scenes: list[F32], boxes: F32, outlines: list[npt.NDArray[np.float64]] | None = None
) -> tuple[list[npt.NDArray[np.uint8]], F32]:
    """Run the camera over BGR float scenes (HxWx3, 0..1) and their xyxy boxes; returns uint8 BGR images.

    ``outlines`` (one point set per box, optional) ride along as ``tv_tensors.KeyPoints``: a box
    rebuilt from its transformed outline stays tight under rotation, where a transformed box
    only grows. The tight box is kept inside the transformed ``BoundingBoxes`` one.
    """
    h, w = scenes[0].shape[:2]
    batch = np.stack([s[:, :, ::-1].transpose(2, 0, 1) for s in scenes])  # BGR HWC -> RGB CHW
    img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    bb = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(h, w))
    inputs: list[Any] = [img, bb]
    if outlines is not None:
        if len(outlines) != len(boxes):
            raise ValueError("one outline per box")
        counts = [len(o) for o in outlines]
        pts = np.concatenate([np.asarray(o, np.float32).reshape(-1, 2) for o in outlines]) if outlines else None
        if pts is not None and len(pts):
            inputs.append(tv_tensors.KeyPoints(torch.from_numpy(pts), canvas_size=(h, w)))
    # Every torch operation here works pixel by pixel (no reductions), so the picture is the same
    # whatever the thread count; the thread count is left to the caller (the station runs a detector).
    out = params.pipeline(h, w)(*inputs)
    out_img, out_bb = out[0], out[1]
    u8 = (out_img.as_subclass(torch.Tensor).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
    images = [np.ascontiguousarray(u8[i].transpose(1, 2, 0)[:, :, ::-1]) for i in range(u8.shape[0])]
    result = np.asarray(out_bb.as_subclass(torch.Tensor).numpy(), np.float32).reshape(-1, 4).copy()
    if len(out) > 2:
        kp = out[2].as_subclass(torch.Tensor).numpy().reshape(-1, 2)
        start = 0
        for i, n in enumerate(counts):
            if n:
                q = kp[start : start + n]
                tight = np.array([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()], np.float32)
                tight = np.clip(tight, [0, 0, 0, 0], [w, h, w, h])
                # inside the transformed box, which bounds the same object
                result[i, :2] = np.maximum(result[i, :2], tight[:2])
                result[i, 2:] = np.minimum(result[i, 2:], tight[2:])
                result[i, 2:] = np.maximum(result[i, 2:], result[i, :2])
            start += n
    return images, result
