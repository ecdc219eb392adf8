"""Static int8 quantisation of an exported detector for ONNX Runtime on the CPU.

Convolutions of the backbone and neck run in int8 (VNNI on this CPU class); the
detection head's box decoding (DFL, the final concatenations and sigmoid) stays in
float so that box coordinates and confidences keep their precision. Calibration uses
frames the station actually sees (synthetic bench images by default).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.detect.base import DetectorError
from inspector.detect.onnx import letterbox
from inspector.types import Image


def _head_nodes(model_path: Path) -> list[str]:
    """Nodes of the last module (the Detect head's decoding) to keep in float."""
    import onnx

    model = onnx.load(str(model_path))
    names = [n.name for n in model.graph.node]
    indices = {
        int(part[len("model.") :])
        for n in names
        if n.startswith("/model.") and (part := n.split("/")[1])[len("model.") :].isdigit()
    }
    if not indices:
        return []
    head = f"/model.{max(indices)}/"
    # Keep the head's decoding in float: everything in the head that is not one of its convolutions' stems.
    return [n for n in names if n.startswith(head) and ("dfl" in n or "Conv" not in n)]


class _Reader:
    """Feeds letterboxed calibration images to the quantiser."""

    def __init__(self, input_name: str, shape: tuple[int, int], images: Sequence[Image]) -> None:
        self._it: Iterator[dict[str, Any]] = iter({input_name: self._blob(img, shape)} for img in images)

    @staticmethod
    def _blob(img: Image, shape: tuple[int, int]) -> Any:
        boxed, _, _ = letterbox(img, shape)
        return (boxed[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy()

    def get_next(self) -> dict[str, Any] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax calibration
        return None


def quantize_int8(src: Path, dst: Path, calibration: Sequence[Image]) -> Path:
    """Write an int8 QDQ copy of ``src`` to ``dst``, calibrated on ``calibration`` (BGR images)."""
    if not calibration:
        raise DetectorError("int8 quantisation needs calibration images")
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = (int(inp.shape[2]), int(inp.shape[3]))
    del sess
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        tmp_out = dst.with_suffix(".tmp.onnx")
        quantize_static(
            str(pre),
            str(tmp_out),
            _Reader(inp.name, shape, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_head_nodes(pre),
        )
    # Keep the class names the float model carries in its metadata.
    import onnx

    q = onnx.load(str(tmp_out))
    meta = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
    del q.metadata_props[:]
    for k, v in meta.items():
        q.metadata_props.add(key=k, value=v)
    onnx.save(q, str(tmp_out))
    tmp_out.replace(dst)
    return dst
