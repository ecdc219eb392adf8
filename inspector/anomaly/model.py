"""An anomaly model on disk and in memory: one extractor, and per family a scorer.

The scorers: ``patchcore`` (distance to a memory bank of good patches), ``padim`` (a Gaussian per
grid position), ``painted`` (a small patch classifier taught on good items with foreign blotches
painted on them, DRAEM's synthetic anomalies on frozen features) and ``patchcore+painted`` (the
larger of the two maps, each over its own validation threshold): the bank knows the family's
good looks, the classifier knows what damage looks like on any item, and each catches what the
other misses.

File format (``weights.pt`` of a registry version): a TorchScript archive of the patch-feature
extractor (:mod:`inspector.anomaly.features`) carrying two extra files: ``anomaly.json`` (format,
per family the method, thresholds and array names) and ``arrays.npz`` (the memory banks or the
Gaussians, no pickles). The version's ``meta.json`` holds the thresholds the station applies;
they override those in the file, so a threshold can be reviewed and changed without retraining.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from inspector.anomaly.base import AnomalyError, AnomalyResult
from inspector.anomaly.features import INPUT_SIZE, for_inference, run, to_batch

FORMAT = 1
METHODS = ("patchcore", "padim", "painted", "patchcore+painted")
SIGMA = 4.0  # Gaussian smoothing of the map, in pixels of the model's input (as anomalib)
_CHUNK = 4096


@dataclass(frozen=True)
class FamilyModel:
    """What was learned of one family's good items, and where its verdict line lies.

    ``threshold`` is on the image score (the smoothed map's maximum), set on validation good
    items for a false-alarm rate; ``pixel_threshold`` marks anomalous pixels of the map.
    """

    method: str
    arrays: Mapping[str, npt.NDArray[np.float32]]
    threshold: float
    pixel_threshold: float
    false_alarm: float = 0.02


def _t(arrays: Mapping[str, npt.NDArray[np.float32]], key: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(arrays[key], np.float32))


def nearest_good(arrays: Mapping[str, npt.NDArray[np.float32]], feats: torch.Tensor) -> torch.Tensor:
    """PatchCore: each patch's distance to its nearest neighbour in the bank of good patches, (N, G, G)."""
    n, c, g, _ = feats.shape
    bank = _t(arrays, "bank")
    bank_sq = (bank * bank).sum(1)
    q = feats.permute(0, 2, 3, 1).reshape(-1, c)
    out = torch.empty(q.shape[0])
    for a in range(0, q.shape[0], _CHUNK):
        part = q[a : a + _CHUNK]
        # |q - b|^2 = |q|^2 + |b|^2 - 2 q.b in one matrix product: half the time of cdist, the same distances
        nearest = torch.addmm(bank_sq[None, :], part, bank.t(), alpha=-2).amin(1)
        out[a : a + _CHUNK] = (nearest + (part * part).sum(1)).clamp_min(0).sqrt()
    return out.reshape(n, g, g)


def painted_head(arrays: Mapping[str, npt.NDArray[np.float32]], feats: torch.Tensor) -> torch.Tensor:
    """The painted-damage classifier: (N, C, G, G) features -> (N, G, G) probabilities that a patch is damage."""
    mu, sd = _t(arrays, "head.mu")[None, :, None, None], _t(arrays, "head.sd")[None, :, None, None]
    x = F.relu(F.conv2d((feats - mu) / sd, _t(arrays, "head.w1"), _t(arrays, "head.b1")))
    x = F.relu(F.conv2d(x, _t(arrays, "head.w2"), _t(arrays, "head.b2"), padding=1))
    return torch.sigmoid(F.conv2d(x, _t(arrays, "head.w3"), _t(arrays, "head.b3"))[:, 0])


def patch_distances(fm: FamilyModel, feats: torch.Tensor) -> torch.Tensor:
    """(N, C, G, G) patch features -> (N, G, G) distances to what good patches look like."""
    n, _, g, _ = feats.shape
    if fm.method == "patchcore":
        return nearest_good(fm.arrays, feats)
    if fm.method == "painted":
        return painted_head(fm.arrays, feats)
    if fm.method == "patchcore+painted":
        scale = np.asarray(fm.arrays["scales"], np.float32)  # each part's own validation threshold
        return torch.maximum(
            nearest_good(fm.arrays, feats) / float(scale[0]), painted_head(fm.arrays, feats) / float(scale[1])
        )
    if fm.method == "padim":
        idx = torch.from_numpy(np.asarray(fm.arrays["dims"], np.int64))
        mean = torch.from_numpy(np.asarray(fm.arrays["mean"], np.float32))  # (P, d)
        icov = torch.from_numpy(np.asarray(fm.arrays["icov"], np.float32))  # (P, d, d)
        x = feats.index_select(1, idx).flatten(2).permute(0, 2, 1)  # (N, P, d)
        diff = x - mean
        m = torch.einsum("npd,pde,npe->np", diff, icov, diff).clamp_min(0).sqrt()
        return m.reshape(n, g, g)
    raise AnomalyError(f"unknown anomaly method {fm.method!r}; expected one of {', '.join(METHODS)}")


def smooth_maps(dist: torch.Tensor) -> npt.NDArray[np.float32]:
    """Patch distances -> maps at the input size, Gaussian-smoothed (sigma 4)."""
    up = F.interpolate(dist[:, None], size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    maps = up[:, 0].numpy().astype(np.float32)
    if not len(maps):
        return maps
    return np.stack([np.asarray(cv2.GaussianBlur(maps[i], (0, 0), SIGMA), np.float32) for i in range(len(maps))])


class AnomalyModel:
    """The served anomaly scorer (implements :class:`inspector.anomaly.base.AnomalyScorer`)."""

    def __init__(
        self,
        extractor: torch.jit.ScriptModule,
        families: Mapping[str, FamilyModel],
        *,
        version: str,
        info: Mapping[str, Any] | None = None,
        runner: torch.jit.ScriptModule | None = None,
    ) -> None:
        self._extractor = extractor
        self._run = runner if runner is not None else for_inference(extractor)
        self._families = dict(families)
        self.version = version
        self.info = dict(info or {})

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(sorted(self._families))

    def family(self, family: str) -> FamilyModel:
        fm = self._families.get(family)
        if fm is None:
            raise AnomalyError(f"anomaly model {self.version} has no model for family {family!r}")
        return fm

    def with_thresholds(self, thresholds: Mapping[str, Mapping[str, Any]]) -> AnomalyModel:
        """A copy whose families take ``threshold``/``pixel_threshold`` from ``thresholds`` (the version's meta)."""
        fams = dict(self._families)
        for fam, t in thresholds.items():
            if fam in fams:
                fams[fam] = replace(
                    fams[fam],
                    threshold=float(t.get("threshold", fams[fam].threshold)),
                    pixel_threshold=float(t.get("pixel_threshold", fams[fam].pixel_threshold)),
                )
        return AnomalyModel(self._extractor, fams, version=self.version, info=self.info, runner=self._run)

    def features(self, crops: Sequence[npt.NDArray[np.uint8]]) -> torch.Tensor:
        return run(self._run, to_batch(crops))

    def maps(self, feats: torch.Tensor, family: str) -> npt.NDArray[np.float32]:
        """Smoothed anomaly maps (N, INPUT_SIZE, INPUT_SIZE) of features already extracted."""
        with torch.inference_mode():
            return smooth_maps(patch_distances(self.family(family), feats))

    def score(self, crop: npt.NDArray[np.uint8], family: str) -> AnomalyResult:
        fm = self.family(family)
        if crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 8:
            raise AnomalyError(f"an item crop must be RGB HxWx3 of at least 8x8 pixels, got {crop.shape}")
        amap = self.maps(self.features([crop]), family)[0]
        heat = cv2.resize(amap, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
        return AnomalyResult(
            score=float(amap.max()),
            threshold=fm.threshold,
            heat=np.asarray(heat, np.float32),
            family=family,
            model_version=self.version,
            extra={"pixel_threshold": fm.pixel_threshold, "false_alarm": fm.false_alarm},
        )

    # ------------------------------------------------------------------ file

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[Any]] = {}
        fams: dict[str, Any] = {}
        for fam, fm in self._families.items():
            names = {}
            for key, arr in fm.arrays.items():
                name = f"{fam}.{key}"
                # banks and Gaussians in half precision keep the file small; indices stay exact
                arrays[name] = arr if arr.dtype.kind in "iu" else np.asarray(arr, np.float16)
                names[key] = name
            fams[fam] = {
                "method": fm.method,
                "threshold": fm.threshold,
                "pixel_threshold": fm.pixel_threshold,
                "false_alarm": fm.false_alarm,
                "arrays": names,
            }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        header = {"format": FORMAT, "input_size": INPUT_SIZE, "families": fams, **self.info}
        extra = {"anomaly.json": json.dumps(header), "arrays.npz": buf.getvalue()}
        with warnings.catch_warnings():  # TorchScript is deprecated for export, not for loading without Python code
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(self._extractor, str(path), _extra_files=extra)

    @classmethod
    def load(cls, path: Path, *, version: str | None = None) -> AnomalyModel:
        """Read a model file; :class:`AnomalyError` names the file and what is wrong with it."""
        if not path.is_file():
            raise AnomalyError(f"anomaly model file not found: {path}")
        extra: dict[str, Any] = {"anomaly.json": "", "arrays.npz": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                extractor = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)  # type: ignore[no-untyped-call]
        except Exception as exc:  # torch raises RuntimeError, ValueError, zip errors for a bad archive
            raise AnomalyError(f"{path}: not a readable anomaly model ({type(exc).__name__})") from exc
        try:
            header = json.loads(extra["anomaly.json"] or "null")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError("no anomaly header of a known format")
            with np.load(io.BytesIO(extra["arrays.npz"]), allow_pickle=False) as npz:
                stored = {k: np.asarray(npz[k]) for k in npz.files}
            fams: dict[str, FamilyModel] = {}
            for fam, spec in header["families"].items():
                arrays = {
                    key: stored[name] if stored[name].dtype.kind in "iu" else stored[name].astype(np.float32)
                    for key, name in spec["arrays"].items()
                }
                fams[fam] = FamilyModel(
                    method=str(spec["method"]),
                    arrays=arrays,
                    threshold=float(spec["threshold"]),
                    pixel_threshold=float(spec["pixel_threshold"]),
                    false_alarm=float(spec.get("false_alarm", 0.02)),
                )
        except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise AnomalyError(f"{path}: corrupt anomaly model ({exc})") from exc
        info = {k: v for k, v in header.items() if k not in {"format", "families", "input_size"}}
        return cls(extractor, fams, version=version or path.stem, info=info)
