"""The training side of ultralytics: train, validate, export, and score images for model comparison.

Everything here produces a model file or measures one on a dataset; serving goes through
:mod:`inspector.detect.yolo`, whose offline set-up (:func:`~inspector.detect.yolo.yolo_class`)
every function here uses too. No ultralytics object leaves this module.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.config import SERVED_NMS_IOU
from inspector.detect.base import DetectorError, one_line
from inspector.detect.yolo import names_of, to_detections, yolo_class
from inspector.training.plots import sampled_pr_curve
from inspector.types import Detections


@dataclass(frozen=True, slots=True)
class TrainResult:
    best: Path
    last: Path
    run_dir: Path
    seconds: float
    epochs_run: int
    images_seen: int = 0  # about how many training samples went through the model, all epochs


def train(
    model: str | Path,
    data_yaml: Path,
    *,
    out_dir: Path,
    name: str = "run",
    epochs: int = 1,
    imgsz: int = 640,
    batch: int = 16,
    seed: int = 0,
    threads: int | None = None,
    time_hours: float | None = None,
    workers: int = 0,
    precision: str = "fp32",
    val_every: int = 1,
    device: str = "cpu",
    progress: Callable[[TrainProgress], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train (or fine-tune) a YOLO model offline and return where its weights are.

    ``model`` is a YOLO yaml (from scratch) or a local ``.pt`` (start from weights; tensors
    whose shapes match the data's labelmap are transferred, the rest start fresh).
    ``progress`` receives a :class:`TrainProgress` per batch and per epoch. ``precision``
    ``"bf16"`` runs the training forward pass under CPU bfloat16 autocast (see
    :func:`cpu_bf16_callbacks`); ultralytics itself offers bf16 on CUDA only; ``"amp"`` is its CUDA
    mixed precision. ``device`` is ultralytics' own ("cpu", "0", "0,1": several GPUs run its DDP). ``val_every``
    validates every Nth epoch only (and always the last; see :func:`val_cadence_callbacks`).
    """
    yolo_cls = yolo_class(threads)
    src = str(model)
    if src.endswith(".pt") and not Path(src).is_file():
        raise DetectorError(f"initial weights not found: {src}")
    t0 = time.perf_counter()
    seen = [0]

    def count_batch(trainer: Any) -> None:
        seen[0] += int(trainer.batch_size)  # nominal: an epoch's last, short batch counts in full

    try:
        m = yolo_cls(src, task="detect")
        m.add_callback("on_train_batch_end", count_batch)
        if progress is not None:
            for event, fn in progress_callbacks(progress).items():
                m.add_callback(event, fn)
        if precision == "bf16":
            for event, fn in cpu_bf16_callbacks().items():
                m.add_callback(event, fn)
        elif precision not in ("fp32", "amp"):
            raise DetectorError(f"unknown training precision {precision!r} (fp32, bf16 or amp)")
        if val_every > 1:
            for event, fn in val_cadence_callbacks(val_every).items():
                m.add_callback(event, fn)
        args: dict[str, Any] = {
            "data": str(data_yaml),
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "seed": seed,
            "deterministic": True,
            "device": device,
            "workers": workers,
            "project": str(out_dir.resolve()),
            "name": name,
            "exist_ok": True,
            "verbose": False,
            "plots": True,
            "amp": precision == "amp",
        }
        if time_hours:
            args["time"] = time_hours
        args.update(overrides)
        m.train(**args)
    except DetectorError:
        raise
    except Exception as exc:
        raise DetectorError(f"training failed: {one_line(exc)}") from exc
    run_dir = out_dir.resolve() / name
    best = run_dir / "weights" / "best.pt"
    last = run_dir / "weights" / "last.pt"
    if not best.is_file():
        best = last
    epochs_run = int(getattr(getattr(m, "trainer", None), "epoch", epochs - 1)) + 1
    return TrainResult(
        best=best,
        last=last,
        run_dir=run_dir,
        seconds=time.perf_counter() - t0,
        epochs_run=epochs_run,
        images_seen=seen[0],
    )


# ------------------------------------------------------------------ progress, validation, export


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 kernels (AVX-512 BF16 or AMX) for oneDNN."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _as_float32(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return {k: _as_float32(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_as_float32(v) for v in out)
    return out


def cpu_bf16_callbacks() -> dict[str, Callable[[Any], None]]:
    """Trainer callbacks that run the training model's forward pass in CPU bfloat16, channels-last.

    Measured on the 2-core bench machine (yolov8n, batch 16 at 384 px, forward + backward):
    2.1 s in fp32, 1.25 s under bf16 autocast, 1.0 s with channels-last as well. Only the
    training model is patched, after ultralytics has made its EMA copy: the EMA weights,
    validation and the saved checkpoint stay fp32/NCHW, and the loss is computed in fp32
    on the forward pass's outputs. Weights stay fp32 (autocast casts per op), so this is
    mixed precision, not a bf16 model. Without native bf16 kernels it does nothing.
    """

    def on_train_start(trainer: Any) -> None:
        import torch

        if not cpu_supports_bf16() or getattr(trainer.device, "type", "cpu") != "cpu":
            return
        model = trainer.model
        model.to(memory_format=torch.channels_last)
        forward_pass = model.predict

        def predict(x: Any, *args: Any, **kwargs: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = forward_pass(x, *args, **kwargs)
            return _as_float32(out)

        model.predict = predict
        trainer.inspector_precision = "bf16"

    return {"on_train_start": on_train_start}


def val_cadence_callbacks(every: int) -> dict[str, Callable[[Any], None]]:
    """Trainer callbacks that validate only every ``every``-th epoch.

    On the 2-core machine a validation pass over the crops took 12 s of a 2-minute epoch,
    and a time-budgeted run re-plans its schedule from the mean epoch time, so skipped
    validations become training. Ultralytics still validates the final epoch (and whenever
    the time budget stops the run), so the saved ``best.pt`` and the final metrics are measured.
    """

    def on_train_epoch_end(trainer: Any) -> None:
        trainer.args.val = (int(trainer.epoch) + 1) % every == 0

    return {"on_train_epoch_end": on_train_epoch_end}


@dataclass(frozen=True, slots=True)
class TrainProgress:
    """One progress event of a training run: a batch done, or an epoch done (with its validation)."""

    kind: str  # "batch" | "epoch" | "final" (validation of the best weights after training)
    epoch: int  # 1-based
    epochs: int  # may change while a time-budgeted run re-plans its schedule
    batch: int
    batches: int
    losses: dict[str, float]
    metrics: dict[str, float]
    elapsed_s: float


def progress_callbacks(report: Callable[[TrainProgress], None]) -> dict[str, Callable[[Any], None]]:
    """Ultralytics trainer callbacks that forward batch and epoch progress to ``report(TrainProgress)``."""
    # "validated": the metrics object the last validation left; an epoch that skipped validation
    # (val_every) still holds it, and reports no metrics rather than stale ones
    state: dict[str, Any] = {"batch": 0, "t0": time.perf_counter(), "in_epoch": False, "validated": None}

    def _losses(trainer: Any) -> dict[str, float]:
        tloss = getattr(trainer, "tloss", None)
        if isinstance(tloss, dict):
            return {str(k): float(v) for k, v in tloss.items()}
        return {}

    def _event(trainer: Any, kind: str) -> TrainProgress:
        current = getattr(trainer, "metrics", None)
        fresh = kind == "final" or (current is not None and current is not state["validated"])
        state["validated"] = current
        metrics = {str(k): float(v) for k, v in (current or {}).items()} if fresh else {}
        return TrainProgress(
            kind=kind,
            epoch=int(trainer.epoch) + 1,
            epochs=int(trainer.epochs),
            batch=int(state["batch"]),
            batches=len(trainer.train_loader),
            losses=_losses(trainer),
            metrics=metrics if kind != "batch" else {},
            elapsed_s=time.perf_counter() - state["t0"],
        )

    def on_train_start(trainer: Any) -> None:
        state["validated"] = getattr(trainer, "metrics", None)  # the zeros ultralytics starts with

    def on_epoch_start(trainer: Any) -> None:
        state["batch"] = 0
        state["in_epoch"] = True

    def on_batch_end(trainer: Any) -> None:
        state["batch"] += 1
        report(_event(trainer, "batch"))

    def on_fit_epoch_end(trainer: Any) -> None:
        # ultralytics fires this once more after the loop, for its validation of best.pt
        report(_event(trainer, "epoch" if state["in_epoch"] else "final"))
        state["in_epoch"] = False

    return {
        "on_train_start": on_train_start,
        "on_train_epoch_start": on_epoch_start,
        "on_train_batch_end": on_batch_end,
        "on_fit_epoch_end": on_fit_epoch_end,
    }


def _validator_at(operating_conf: float) -> Any:
    """A detection validator whose confusion matrix counts detections above the operating confidence.

    mAP needs every candidate box (ultralytics validates at conf 0.001), but a confusion
    matrix at that threshold is mostly noise; the station acts at its own threshold.
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    class OperatingPointValidator(DetectionValidator):
        def init_metrics(self, model: Any) -> None:
            super().init_metrics(model)
            matrix: Any = self.confusion_matrix
            inner = matrix.process_batch

            def process_batch(detections: Any, batch: Any, conf: float = 0.25, iou_thres: float = 0.45) -> None:
                inner(detections, batch, conf=operating_conf, iou_thres=iou_thres)

            matrix.process_batch = process_batch

    return OperatingPointValidator


def _at_confidence(px: Any, curve: Any, conf: float) -> np.ndarray[Any, Any]:
    """Per-class value of a confidence-indexed curve (ultralytics' p_curve/r_curve) at ``conf``."""
    if curve is None or len(curve) == 0:
        return np.zeros(0)
    return np.array([float(np.interp(conf, px, row)) for row in np.asarray(curve)])


def _val(
    m: Any,
    validator: Any,
    data_yaml: Path,
    split: str,
    imgsz: int,
    batch: int,
    iou: float,
    plots: bool,
    run_dir: Path,
) -> Any:
    """One ultralytics validation run as every evaluation here does it: all scores (conf 0.001), CPU, offline."""
    return m.val(
        validator=validator,
        data=str(data_yaml),
        split=split,
        imgsz=imgsz,
        batch=batch,
        conf=0.001,
        iou=iou,
        device="cpu",
        workers=0,
        plots=plots,
        project=str(run_dir.parent),
        name=run_dir.name,
        exist_ok=True,
        verbose=False,
        save_json=False,
    )


def validate(
    weights: str | Path,
    data_yaml: Path,
    *,
    split: str = "test",
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = SERVED_NMS_IOU,
    batch: int = 16,
    threads: int | None = None,
    out_dir: Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Ultralytics' detection metrics of ``weights`` on one split of a YOLO dataset.

    mAP50 and mAP50-95 (all candidate boxes), per-class AP, precision and recall at the
    operating confidence ``conf`` (read off ultralytics' per-class curves), the confusion
    matrix at ``conf`` (rows predicted, columns true, last = background), speed per image
    in ms, and the paths of the PR-curve and confusion-matrix plots when ``plots``.
    """
    path = Path(weights)
    if not path.is_file():
        raise DetectorError(f"model file not found: {path}")
    yolo_cls = yolo_class(threads)
    # never next to the weights: a registry version folder must hold only what the registry wrote
    run_dir = (out_dir or Path(tempfile.mkdtemp(prefix="inspector-val-")) / "val").resolve()
    seen: dict[str, int] = {}
    try:
        m: Any = yolo_cls(str(path), task="detect")
        m.add_callback("on_val_end", lambda v: seen.update(images=int(getattr(v, "seen", 0))))
        metrics: Any = _val(m, _validator_at(conf), data_yaml, split, imgsz, batch, iou, plots, run_dir)
    except DetectorError:
        raise
    except Exception as exc:
        raise DetectorError(f"evaluation failed: {one_line(exc)}") from exc
    names = names_of(m)
    box = metrics.box
    classes = [int(c) for c in box.ap_class_index]
    px = np.asarray(getattr(box, "px", np.linspace(0, 1, 1000)))
    p_at = _at_confidence(px, getattr(box, "p_curve", None), conf)
    r_at = _at_confidence(px, getattr(box, "r_curve", None), conf)
    # ultralytics' curve reads precision 1 where nothing is predicted; no true positive counts as 0 here.
    p_at = np.where(r_at > 0, p_at, 0.0) if len(p_at) == len(r_at) else p_at
    nt_class = np.asarray(metrics.nt_per_class if metrics.nt_per_class is not None else np.zeros(len(names)))
    nt_image = np.asarray(metrics.nt_per_image if metrics.nt_per_image is not None else np.zeros(len(names)))
    per_class: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(classes):
        per_class[names[c]] = {
            "ap50": float(box.all_ap[i, 0]),
            "ap50_95": float(box.all_ap[i].mean()),
            "precision": float(p_at[i]) if len(p_at) else 0.0,
            "recall": float(r_at[i]) if len(r_at) else 0.0,
            "instances": int(nt_class[c]),
            "images": int(nt_image[c]),
        }
    matrix = np.asarray(metrics.confusion_matrix.matrix).round().astype(int)
    save_dir = Path(getattr(metrics, "save_dir", run_dir))
    figures: dict[str, str] = {}
    for key, pattern in (
        ("pr_curve", "*PR_curve.png"),
        ("confusion_matrix", "confusion_matrix.png"),
        ("confusion_matrix_normalized", "confusion_matrix_normalized.png"),
    ):
        found = sorted(save_dir.glob(pattern))
        if found:
            figures[key] = str(found[0])
    return {
        "map50": float(box.map50),
        "map50_95": float(box.map),
        "precision": float(p_at.mean()) if len(p_at) else 0.0,
        "recall": float(r_at.mean()) if len(r_at) else 0.0,
        "operating_confidence": conf,
        "precision_at_best_f1": float(box.mp),
        "recall_at_best_f1": float(box.mr),
        "nms_iou": iou,
        "imgsz": imgsz,
        "split": split,
        "images": seen.get("images", 0),
        "instances": int(nt_class.sum()),
        "per_class": per_class,
        "confusion_matrix": {"labels": [*names, "background"], "matrix": matrix.tolist()},
        "pr_curve": sampled_pr_curve(px, getattr(box, "prec_values", None), [names[c] for c in classes]),
        "speed_ms_per_image": {str(k): float(v) for k, v in metrics.speed.items()},
        "figures": figures,
    }


def export(
    weights: str | Path,
    *,
    fmt: str = "onnx",
    imgsz: int | tuple[int, int] = 640,
    threads: int | None = None,
    **kwargs: Any,
) -> Path:
    """Export local weights with ultralytics' exporter (next to the weights); returns the artefact path."""
    path = Path(weights)
    if not path.is_file():
        raise DetectorError(f"model file not found: {path}")
    yolo_cls = yolo_class(threads)
    try:
        m: Any = yolo_cls(str(path), task="detect")
        size = list(imgsz) if isinstance(imgsz, tuple) else imgsz
        out = m.export(format=fmt, imgsz=size, device="cpu", **kwargs)
    except Exception as exc:
        raise DetectorError(f"{fmt} export failed: {one_line(exc)}") from exc
    if not out or not Path(out).exists():
        raise DetectorError(f"{fmt} export produced no file for {path}")
    return Path(out)


def export_onnx(
    weights: str | Path, imgsz: int | tuple[int, int] = 640, *, threads: int | None = None, **kwargs: Any
) -> Path:
    """ONNX export (simplified, static 1x3xHxW input, imgsz square or (h, w), raw head output without NMS)."""
    return export(weights, fmt="onnx", imgsz=imgsz, threads=threads, simplify=True, **kwargs)


def predict(
    model: str | Path,
    images: Sequence[np.ndarray[Any, Any]],
    *,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = SERVED_NMS_IOU,
    threads: int | None = None,
    square: bool = False,
) -> list[Detections]:
    """Detections from any ultralytics-loadable model (``.pt``, ``.onnx``, OpenVINO folder) on BGR images.

    Used to compare an exported model with its PyTorch source through the same pre- and
    post-processing. ``square`` letterboxes to imgsz x imgsz, as a static-shape export
    must; PyTorch otherwise pads only to the stride, which changes the input and so the
    scores, and a parity check would measure the padding, not the export.
    """
    yolo_cls = yolo_class(threads)
    try:
        m: Any = yolo_cls(str(model), task="detect")
        extra = {"rect": False} if square else {}
        results = m.predict(list(images), imgsz=imgsz, conf=conf, iou=iou, device="cpu", verbose=False, **extra)
    except Exception as exc:
        raise DetectorError(f"cannot run {model}: {one_line(exc)}") from exc
    names = names_of(m)
    return [to_detections(r, names) for r in results]


def raw_output_difference(
    weights: str | Path, exported: Path, images: Sequence[np.ndarray[Any, Any]], imgsz: int
) -> dict[str, float]:
    """Largest absolute differences of the raw head outputs, PyTorch vs an exported model.

    Both see the same letterboxed tensor (the export through ultralytics' backend for its
    format: onnxruntime, OpenVINO), so any difference comes from the exported graph. For a
    (1, 4 + nc, anchors) head, box coordinates (pixels) and class scores are reported apart.
    """
    yolo_cls = yolo_class(None)  # the offline set-up comes before any other ultralytics import
    import torch
    from ultralytics.data.augment import LetterBox
    from ultralytics.nn.autobackend import AutoBackend

    loaded: Any = yolo_cls(str(weights), task="detect")
    net = loaded.model.float().eval()
    nc = len(names_of(loaded))
    try:
        backend: Any = AutoBackend(str(exported), device=torch.device("cpu"), verbose=False)
    except Exception as exc:
        raise DetectorError(f"cannot load {exported}: {one_line(exc)}") from exc
    letterbox = LetterBox((imgsz, imgsz), auto=False, stride=32)
    worst = {"boxes_px": 0.0, "scores": 0.0, "overall": 0.0}

    def first(y: Any) -> np.ndarray[Any, Any]:
        while isinstance(y, (list, tuple)):
            y = y[0]
        return np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)

    for img in images:
        lb: Any = letterbox(image=img)
        x = torch.from_numpy(np.ascontiguousarray(lb[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0)
        with torch.no_grad():
            ref_np = first(net(x))
            out = first(backend(x))
        if out.shape != ref_np.shape:
            raise DetectorError(f"exported output shape {out.shape} differs from PyTorch {ref_np.shape}")
        diff = np.abs(out - ref_np)
        worst["overall"] = max(worst["overall"], float(diff.max()))
        if diff.ndim == 3 and diff.shape[1] == 4 + nc:
            worst["boxes_px"] = max(worst["boxes_px"], float(diff[:, :4].max()))
            worst["scores"] = max(worst["scores"], float(diff[:, 4:].max()))
    return worst


# ------------------------------------------------------------------ per-image match statistics (model comparison)


@dataclass(frozen=True, slots=True)
class ImageMatches:
    """One validation image as ultralytics' validator scored it: each prediction's IoU-threshold hits."""

    name: str
    tp: np.ndarray[Any, Any]  # (n_pred, 10) bool, IoU 0.50:0.95
    conf: np.ndarray[Any, Any]  # (n_pred,)
    pred_cls: np.ndarray[Any, Any]  # (n_pred,)
    target_cls: np.ndarray[Any, Any]  # (n_target,)


def match_stats(
    weights: str | Path,
    data_yaml: Path,
    *,
    split: str = "test",
    imgsz: int = 640,
    iou: float = SERVED_NMS_IOU,
    batch: int = 16,
    threads: int | None = None,
    out_dir: Path | None = None,
) -> tuple[list[ImageMatches], tuple[str, ...]]:
    """Per-image statistics from ultralytics' own validator, so that metrics can be resampled over images.

    The validator matches predictions to labels exactly as ``validate`` does (conf 0.001,
    all candidate boxes); every image's row is captured as it is handed to the metrics.
    """
    path = Path(weights)
    if not path.is_file():
        raise DetectorError(f"model file not found: {path}")
    yolo_cls = yolo_class(threads)  # the offline set-up comes before any other ultralytics import
    from ultralytics.models.yolo.detect import DetectionValidator

    rows: list[ImageMatches] = []

    class CapturingValidator(DetectionValidator):
        def init_metrics(self, model: Any) -> None:
            super().init_metrics(model)
            metrics: Any = self.metrics
            inner = metrics.update_stats

            def update_stats(stat: dict[str, Any]) -> None:
                rows.append(
                    ImageMatches(
                        name=str(stat.get("im_name", len(rows))),
                        tp=np.asarray(stat["tp"], dtype=bool).reshape(-1, 10),
                        conf=np.asarray(stat["conf"], dtype=np.float64).reshape(-1),
                        pred_cls=np.asarray(stat["pred_cls"], dtype=np.float64).reshape(-1),
                        target_cls=np.asarray(stat["target_cls"], dtype=np.float64).reshape(-1),
                    )
                )
                inner(stat)

            metrics.update_stats = update_stats

    run_dir = (out_dir or Path(tempfile.mkdtemp(prefix="inspector-match-")) / "val").resolve()
    try:
        m: Any = yolo_cls(str(path), task="detect")
        _val(m, CapturingValidator, data_yaml, split, imgsz, batch, iou, False, run_dir)
    except DetectorError:
        raise
    except Exception as exc:
        raise DetectorError(f"evaluation failed: {one_line(exc)}") from exc
    return rows, names_of(m)
