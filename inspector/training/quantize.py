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


def _head_index(names: Sequence[str]) -> int | None:
    """N of the last ``/model.N/`` module among graph node names: the Detect head, or None."""
    indices = {
        int(part[len("model.") :])
        for n in names
        if n.startswith("/model.") and (part := n.split("/")[1])[len("model.") :].isdigit()
    }
    return max(indices) if indices else None


def _head_nodes(model_path: Path) -> list[str]:
    """Nodes of the last module (the Detect head's decoding) to keep in float."""
    import onnx

    model = onnx.load(str(model_path))
    names = [n.name for n in model.graph.node]
    index = _head_index(names)
    if index is None:
        return []
    head = f"/model.{index}/"
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


# ------------------------------------------------------------------ OpenVINO


def _head_patterns(names: Sequence[str]) -> list[str]:
    """NNCF ignored-scope patterns for the Detect head's box decoding (the last ``/model.N/`` module)."""
    index = _head_index(names)
    if index is None:
        return []
    head = f"/model\\.{index}"
    # DFL, the anchor arithmetic and the final concatenations stay in float; the head's convolutions do not.
    return [f"{head}/dfl/.*", f"{head}/Sub.*", f"{head}/Add.*", f"{head}/Mul.*", f"{head}/Div.*", f"{head}/Concat.*"]


def _save_ir(model: Any, dst: Path, names: Sequence[str], *, compress_to_fp16: bool) -> Path:
    """Save an IR pair under temporary names, then move both into place (the .bin first)."""
    import json

    import openvino as ov

    from inspector.detect.openvino import NAMES_KEY

    model.set_rt_info(json.dumps(list(names)), NAMES_KEY)
    tmp_xml = dst.with_name(dst.stem + ".tmp.xml")
    ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
    tmp_xml.with_suffix(".bin").replace(dst.with_suffix(".bin"))
    tmp_xml.replace(dst)
    return dst


def openvino_fp32(src_onnx: Path, dst_xml: Path) -> Path:
    """Convert an exported ONNX model to an OpenVINO IR with fp32 weights, keeping its class names."""
    import onnx
    import openvino as ov

    from inspector.detect.onnx import names_from_metadata

    meta = {p.key: p.value for p in onnx.load(str(src_onnx), load_external_data=False).metadata_props}
    names = names_from_metadata(meta)
    if not names:
        raise DetectorError(f"{src_onnx}: the model does not name its classes")
    try:
        model = ov.convert_model(str(src_onnx))
    except Exception as exc:
        raise DetectorError(f"OpenVINO cannot convert {src_onnx}: {exc}") from exc
    return _save_ir(model, dst_xml, names, compress_to_fp16=False)


def openvino_int8(src_xml: Path, dst_xml: Path, calibration: Sequence[Image]) -> Path:
    """NNCF post-training int8 quantisation of an OpenVINO IR, calibrated on ``calibration`` (BGR images).

    Convolutions and the other heavy operations run in int8 (VNNI); the head's box decoding stays
    in float, as in the ONNX Runtime int8 model.
    """
    if not calibration:
        raise DetectorError("int8 quantisation needs calibration images")
    import os

    os.environ.setdefault("NNCF_CI", "1")  # NNCF otherwise reports usage over the network
    import logging

    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)

    from inspector.detect.openvino import read_names

    model = ov.Core().read_model(str(src_xml))
    names = read_names(model)
    if not names:
        raise DetectorError(f"{src_xml}: the model does not name its classes")
    shape = model.inputs[0].get_partial_shape()
    hw = (int(shape[2].get_length()), int(shape[3].get_length()))
    blobs = [_Reader._blob(img, hw) for img in calibration]
    ops = [op.get_friendly_name() for op in model.get_ops()]
    try:
        quantized = nncf.quantize(
            model,
            nncf.Dataset(blobs),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(blobs),
            ignored_scope=nncf.IgnoredScope(patterns=_head_patterns(ops), types=["Sigmoid"], validate=False),
        )
    except Exception as exc:
        raise DetectorError(f"int8 quantisation of {src_xml} failed: {exc}") from exc
    return _save_ir(quantized, dst_xml, names, compress_to_fp16=False)
