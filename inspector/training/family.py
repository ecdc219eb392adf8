"""Train the product-family classifier from scratch on item crops.

The crops come from the synthetic bench (the item box of each rendered sample,
jittered as a detector's box would be) or from any list of crops with their
family. ``python -m inspector.training.family --images 2000 --out models/family/family.pt``
trains one; nothing is downloaded and no weights are committed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inspector.grading.family import (
    INPUT_SIZE,
    Crop,
    FamilyClassifier,
    build_model,
    crop_item,
    recalibrate_batchnorm,
    to_batch,
)
from inspector.items import FAMILIES


def synth_crops(
    n: int, seed: int, size: int = INPUT_SIZE, jitter: float = 0.06, image_size: tuple[int, int] = (640, 480)
) -> tuple[list[Crop], list[str]]:
    """Item crops of ``n`` synthetic bench pictures (empty benches are skipped), with their family.

    The ground-truth item box is jittered by up to ``jitter`` of its size on each side, as
    the detector's box would be at inference time.
    """
    from inspector.data.synth import render_sample

    rng = np.random.default_rng(seed)
    crops: list[Crop] = []
    labels: list[str] = []
    for i in range(n):
        sample = render_sample(seed * 1_000_003 + i, image_size)
        family = sample.meta.get("family")
        item = sample.meta.get("item") or {}
        if sample.meta.get("empty") or family not in FAMILIES or not item.get("box"):
            continue
        x1, y1, x2, y2 = (float(v) for v in item["box"])
        w, h = x2 - x1, y2 - y1
        d = rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
        box = (x1 + d[0], y1 + d[1], max(x1 + d[0] + 2, x2 + d[2]), max(y1 + d[1] + 2, y2 + d[3]))
        crops.append(crop_item(sample.image, box, size))
        labels.append(str(family))
    return crops, labels


def augment(crop: Crop, rng: np.random.Generator) -> Crop:
    """Flips, quarter turns and a brightness/contrast change: items lie any way up under any light."""
    out = np.rot90(crop, int(rng.integers(4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.75, 1.25)
    bias = rng.uniform(-20, 20)
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def evaluate_family(clf: FamilyClassifier, crops: Sequence[Crop], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-family recall and the confusion matrix (rows: truth, columns: prediction)."""
    preds = [p.family for p in clf.predict_crops(list(crops))]
    index = {f: i for i, f in enumerate(clf.families)}
    confusion = np.zeros((len(index), len(index)), dtype=np.int64)
    for truth, pred in zip(labels, preds, strict=True):
        confusion[index[truth], index[pred]] += 1
    per_family = {
        f: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None) for f, i in index.items()
    }
    n = len(labels)
    return {
        "n": n,
        "accuracy": float(np.trace(confusion) / n) if n else None,
        "per_family_recall": per_family,
        "confusion": confusion.tolist(),
        "families": list(clf.families),
    }


def train_family(
    crops: Sequence[Crop],
    labels: Sequence[str],
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    input_size: int = INPUT_SIZE,
    val: tuple[Sequence[Crop], Sequence[str]] | None = None,
    version: str = "",
    log: Callable[[str], None] | None = None,
) -> FamilyClassifier:
    """Train MobileNetV3-small from random weights on the crops; returns the classifier with its metrics."""
    if len(crops) != len(labels) or not crops:
        raise ValueError(
            f"need as many labels as crops, and at least one: got {len(crops)} crops, {len(labels)} labels"
        )
    unknown = sorted(set(labels) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
    if any(c.shape != (input_size, input_size, 3) for c in crops):
        raise ValueError(f"crops must be {input_size}x{input_size} BGR; use crop_item(..., size={input_size})")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(len(FAMILIES))
    y_all = np.array([FAMILIES.index(lbl) for lbl in labels], dtype=np.int64)
    counts = np.bincount(y_all, minlength=len(FAMILIES)).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(FAMILIES), 0.0))
    loss_fn = nn.CrossEntropyLoss(weight=weights.float(), label_smoothing=0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, epochs * ((len(crops) + batch_size - 1) // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(crops))
        total, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            x = to_batch([augment(crops[i], rng) for i in idx])
            y = torch.from_numpy(y_all[idx])
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        row = {"epoch": float(epoch + 1), "loss": total / max(seen, 1)}
        if val is not None and len(val[0]) and (epoch + 1 == epochs or log is not None):
            _calibrate(model, crops, batch_size)
            row["val_accuracy"] = float(
                evaluate_family(FamilyClassifier(model, input_size=input_size), *val)["accuracy"]
            )
        history.append(row)
        if log is not None:
            log(" ".join(f"{k} {v:.4f}" if k != "epoch" else f"epoch {int(v)}" for k, v in row.items()))
    _calibrate(model, crops, batch_size)
    clf = FamilyClassifier(model=model, input_size=input_size, version=version)
    clf.metrics = {
        "train_images": len(crops),
        "epochs": epochs,
        "seconds": round(time.perf_counter() - t0, 2),
        "history": history,
    }
    if val is not None and len(val[0]):
        clf.metrics["val"] = evaluate_family(clf, *val)
    return clf


def _calibrate(model: nn.Module, crops: Sequence[Crop], batch_size: int) -> None:
    batches = [to_batch(crops[i : i + batch_size]) for i in range(0, min(len(crops), 64 * batch_size), batch_size)]
    recalibrate_batchnorm(model, batches)


def main(argv: list[str] | None = None) -> int:
    """Render crops from the synthetic bench, train, evaluate on another seed, save."""
    ap = argparse.ArgumentParser(prog="python -m inspector.training.family", description=__doc__)
    ap.add_argument("--images", type=int, default=2000, help="synthetic pictures to train on")
    ap.add_argument("--val-images", type=int, default=400, help="pictures of another seed to evaluate on")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--val-seed", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--version", default=None, help="version name (default family-YYYYMMDD-HHMM)")
    ap.add_argument("--out", type=Path, required=True, help="weights file to write (.pt)")
    args = ap.parse_args(argv)
    from inspector import runtime

    runtime.configure(args.threads)
    version = args.version or time.strftime("family-%Y%m%d-%H%M")

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say(f"rendering {args.images} + {args.val_images} synthetic pictures...")
    crops, labels = synth_crops(args.images, args.seed)
    val = synth_crops(args.val_images, args.val_seed)
    say(f"training on {len(crops)} crops, validating on {len(val[0])}")
    clf = train_family(
        crops, labels, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, val=val, version=version, log=say
    )
    clf.save(args.out)
    say(f"saved {args.out}: val accuracy {clf.metrics['val']['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
