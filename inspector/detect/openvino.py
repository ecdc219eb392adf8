"""OpenVINO detector backend: the exported model (fp32 or NNCF int8) on the CPU plugin.

Same :class:`Detections` out as the other backends; letterboxing and the head's decoding
are the ONNX backend's. The conversion from uint8 BGR HWC to float RGB NCHW runs inside
the compiled graph (OpenVINO's pre-processing), not in numpy. A pool of infer requests
makes ``detect`` safe to call from several threads and lets a multi-frame call run its
frames concurrently, one per CPU stream.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.detect.base import DetectorError, one_line
from inspector.detect.onnx import decode_head, input_shape, letterbox
from inspector.types import Detections, Frame, Image

NAMES_KEY = ["inspector", "class_names"]  # where an exported model carries its labelmap (rt_info)
PRECISIONS = ("f32", "bf16")


def read_names(model: Any) -> tuple[str, ...] | None:
    """The class names stored in an OpenVINO model's runtime info, or None."""
    if not model.has_rt_info(NAMES_KEY):
        return None
    raw = model.get_rt_info(NAMES_KEY)
    text = raw.astype(str) if hasattr(raw, "astype") else str(raw)
    names = json.loads(text)
    return tuple(str(n) for n in names)


class OpenVinoDetector:
    """Runs an OpenVINO IR (``.xml`` + ``.bin``) detection model.

    ``streams`` > 1 compiles for throughput (that many requests in flight, the threads
    shared between them); 1 compiles for latency (every thread on one request).
    ``precision`` is the plugin's inference precision for the float parts of the graph:
    ``f32`` keeps PyTorch's numbers; ``bf16`` uses the CPU's bfloat16 units.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        confidence: float = 0.25,
        iou: float = 0.5,
        imgsz: int = 640,
        threads: int | None = None,
        streams: int = 1,
        precision: str = "f32",
        model_version: str | None = None,
        class_names: Sequence[str] | None = None,
        max_det: int = 300,
    ) -> None:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        path = Path(model_path)
        if not path.is_file():
            raise DetectorError(f"model file not found: {path}")
        if precision not in PRECISIONS:
            raise DetectorError(f"OpenVINO precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
            raise DetectorError(f"cannot load model {path}: {one_line(exc)}") from exc
        names = tuple(class_names) if class_names else read_names(model)
        if not names:
            raise DetectorError(f"{path}: the model does not name its classes; pass class_names")
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4 or not (shape[2].is_static and shape[3].is_static):
            raise DetectorError(f"{path}: expected a static 1x3xHxW input, got {shape}")
        self._static_shape = (int(shape[2].get_length()), int(shape[3].get_length()))

        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR
        )
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        model = ppp.build()

        n_streams = max(1, int(streams))
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT" if n_streams > 1 else "LATENCY",
            "NUM_STREAMS": n_streams,
            "INFERENCE_PRECISION_HINT": precision,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise DetectorError(f"cannot compile model {path}: {one_line(exc)}") from exc
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(n_streams):
            self._requests.put(self._compiled.create_infer_request())
        self.streams = n_streams
        self._names = names
        self._version = model_version or path.stem
        self.confidence = confidence
        self.iou = iou
        self.imgsz = int(self._static_shape[1])
        self.max_det = max_det
        self.precision = precision

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def input_shape(self) -> tuple[int, int]:
        """The static (h, w) the model was exported for."""
        return self._static_shape

    def preprocess(self, image: Image) -> tuple[np.ndarray[Any, Any], tuple[float, float], tuple[float, float]]:
        """Letterbox to the model's shape; the tensor is the uint8 BGR image with a batch axis."""
        boxed, gain, pad = letterbox(image, input_shape(image, self.imgsz, self._static_shape))
        return boxed[None], gain, pad

    def forward(self, tensor: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The raw head output for one preprocessed tensor (thread-safe)."""
        request = self._requests.get()
        try:
            request.infer({0: tensor})
            return np.array(request.get_output_tensor(0).data, dtype=np.float32)
        finally:
            self._requests.put(request)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if len(frames) <= 1 or self.streams == 1:
            return [self._detect_one(f) for f in frames]
        # Several views: one request per stream in flight at once.
        out: list[Detections | None] = [None] * len(frames)
        pending = list(enumerate(frames))
        while pending:
            batch, pending = pending[: self.streams], pending[self.streams :]
            taken = [(i, f, self._requests.get()) for i, f in batch]
            try:
                prepared = []
                for i, f, req in taken:
                    tensor, gain, pad = self.preprocess(f.image)
                    req.start_async({0: tensor})
                    prepared.append((i, f, req, gain, pad))
                for i, f, req, gain, pad in prepared:
                    req.wait()
                    raw = np.array(req.get_output_tensor(0).data, dtype=np.float32)
                    out[i] = decode_head(
                        raw, gain, pad, (f.height, f.width), self._names, self.confidence, self.iou, self.max_det
                    )
            finally:
                for _, _, req in taken:
                    self._requests.put(req)
        return [d for d in out if d is not None]

    def _detect_one(self, frame: Frame) -> Detections:
        tensor, gain, pad = self.preprocess(frame.image)
        raw = self.forward(tensor)
        return decode_head(
            raw, gain, pad, (frame.height, frame.width), self._names, self.confidence, self.iou, self.max_det
        )
