"""ONNX Runtime detector backend: the exported model, without torch on the hot path.

Same :class:`Detections` out as the ultralytics backend. Pre- and post-processing
follow ultralytics' detection head export (output ``(1, 4 + nc, anchors)``, boxes
as centre-x, centre-y, width, height in letterboxed input pixels, no NMS inside).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from inspector.boxes import cxcywh_to_xyxy, nms
from inspector.detect.base import DetectorError, one_line
from inspector.types import Detections, Frame, Image

_PAD_VALUE = 114  # ultralytics' letterbox grey


def letterbox(image: Image, shape: tuple[int, int]) -> tuple[Image, tuple[float, float], tuple[float, float]]:
    """Resize keeping aspect ratio and pad to ``shape`` (h, w), as ultralytics' LetterBox does.

    Returns the image, the per-axis gains (x, y) and the padding (left, top).
    """
    h, w = image.shape[:2]
    th, tw = shape
    g = min(th / h, tw / w)
    nh, nw = max(round(h * g), 1), max(round(w * g), 1)
    if (nh, nw) != (h, w):
        image = np.asarray(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    top, left = (th - nh) / 2, (tw - nw) / 2
    t, b = round(top - 0.1), round(th - nh - (top - 0.1))
    lft, r = round(left - 0.1), round(tw - nw - (left - 0.1))
    if t or b or lft or r:
        image = np.asarray(
            cv2.copyMakeBorder(image, t, b, lft, r, cv2.BORDER_CONSTANT, value=(_PAD_VALUE,) * 3), dtype=np.uint8
        )
    return np.ascontiguousarray(image[:th, :tw]), (nw / w, nh / h), (float(lft), float(t))


def names_from_metadata(meta: dict[str, str]) -> tuple[str, ...] | None:
    """The class names an ultralytics export writes into the ONNX metadata (a dict or list literal), or None."""
    raw = meta.get("names")
    if not raw:
        return None
    try:
        parsed = json.loads(raw.replace("'", '"'))
    except json.JSONDecodeError:
        import ast

        parsed = ast.literal_eval(raw)
    if isinstance(parsed, dict):
        return tuple(str(parsed[k]) for k in sorted(parsed, key=int))
    return tuple(str(n) for n in parsed)


def input_shape(image: Image, imgsz: int, static: tuple[int, int] | None) -> tuple[int, int]:
    """The (h, w) a frame is letterboxed to: the model's static shape, or imgsz on the long side, stride 32."""
    if static is not None:
        return static
    h, w = image.shape[:2]
    gain = imgsz / max(h, w)
    return (int(np.ceil(h * gain / 32) * 32), int(np.ceil(w * gain / 32) * 32))


def decode_head(
    output: npt.NDArray[Any],
    gain: tuple[float, float],
    pad: tuple[float, float],
    orig: tuple[int, int],
    names: tuple[str, ...],
    confidence: float,
    iou: float,
    max_det: int,
) -> Detections:
    """Raw head output ``(1, 4 + nc, anchors)`` -> NMS'd detections in the original frame's pixels."""
    pred = np.asarray(output[0], dtype=np.float32).T  # (anchors, 4 + nc)
    scores_all = pred[:, 4:]
    cls = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(pred.shape[0]), cls]
    keep = scores >= confidence
    if not keep.any():
        return Detections.empty(names)
    pred, scores, cls = pred[keep], scores[keep], cls[keep].astype(np.int64)
    boxes = cxcywh_to_xyxy(pred[:, :4])
    idx = nms(boxes, scores, cls, iou, max_det)
    boxes, scores, cls = boxes[idx], scores[idx], cls[idx]
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad[0]) / gain[0]
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad[1]) / gain[1]
    oh, ow = orig
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, ow)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, oh)
    return Detections(xyxy=boxes, confidence=scores, class_id=cls, class_names=names)


class OnnxDetector:
    """Runs an ultralytics-exported ONNX detection model with ONNX Runtime on the CPU."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        confidence: float = 0.25,
        iou: float = 0.5,
        imgsz: int = 640,
        threads: int | None = None,
        model_version: str | None = None,
        class_names: Sequence[str] | None = None,
        max_det: int = 300,
    ) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise DetectorError(f"model file not found: {path}")
        opts = ort.SessionOptions()
        n = threads or max(1, os.cpu_count() or 1)
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise DetectorError(f"cannot load model {path}: {one_line(exc)}") from exc
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._input_fp16 = "float16" in inp.type
        shape = inp.shape
        static = all(isinstance(d, int) for d in shape[2:4])
        self._static_shape: tuple[int, int] | None = (int(shape[2]), int(shape[3])) if static else None
        meta = self._session.get_modelmeta().custom_metadata_map
        names = tuple(class_names) if class_names else names_from_metadata(meta)
        if not names:
            raise DetectorError(f"{path}: the model does not name its classes; pass class_names")
        self._names = names
        self._version = model_version or path.stem
        self.confidence = confidence
        self.iou = iou
        self.imgsz = int(self._static_shape[1] if self._static_shape else imgsz)
        self.max_det = max_det

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    def _input_shape(self, image: Image) -> tuple[int, int]:
        return input_shape(image, self.imgsz, self._static_shape)

    def preprocess(self, image: Image) -> tuple[npt.NDArray[Any], tuple[float, float], tuple[float, float]]:
        boxed, gain, pad = letterbox(image, self._input_shape(image))
        blob = cv2.dnn.blobFromImage(boxed, scalefactor=1 / 255.0, swapRB=True)
        if self._input_fp16:
            blob = blob.astype(np.float16)
        return blob, gain, pad

    def postprocess(
        self, output: npt.NDArray[Any], gain: tuple[float, float], pad: tuple[float, float], orig: tuple[int, int]
    ) -> Detections:
        return decode_head(output, gain, pad, orig, self._names, self.confidence, self.iou, self.max_det)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out: list[Detections] = []
        for f in frames:
            blob, gain, pad = self.preprocess(f.image)
            (pred,) = self._session.run(None, {self._input_name: blob})[:1]
            out.append(self.postprocess(pred, gain, pad, (f.height, f.width)))
        return out
