"""The two figures anomaly detection is judged by: image-level AUROC and pixel-level AUPRO.

AUPRO follows the MVTec AD reference (and anomalib): the per-region overlap, averaged over every
connected defect region, integrated against the false-positive rate on defect-free pixels up to
a limit (0.3) and divided by that limit, so a perfect map scores 1.0 and a constant one 0.15.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt


def auroc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve (1 = every positive above every negative; ties count half)."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels, bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs positives and negatives")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks over ties (Mann-Whitney U)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pro_curve(
    maps: Sequence[npt.NDArray[np.floating]], masks: Sequence[npt.NDArray[np.bool_]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(FPR, PRO) at every distinct threshold, from the highest down; both start at 0."""
    labelled: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int32]]] = []
    regions = 0
    for amap, mask in zip(maps, masks, strict=True):
        m = np.asarray(mask, bool)
        if m.shape != amap.shape:
            raise ValueError(f"map {amap.shape} and mask {m.shape} differ in size")
        n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        labelled.append((np.asarray(amap, np.float64), m, np.asarray(lab, np.int32)))
        regions += n - 1
    if regions == 0:
        raise ValueError("AUPRO needs at least one defect region")
    total_neg = sum(int((~m).sum()) for _, m, _ in labelled)
    if total_neg == 0:
        raise ValueError("AUPRO needs defect-free pixels")
    scores: list[npt.NDArray[np.float64]] = []
    neg_w: list[npt.NDArray[np.float64]] = []
    pos_w: list[npt.NDArray[np.float64]] = []
    for amap, m, lab in labelled:
        flat = lab.ravel()
        sizes = np.bincount(flat)
        # each pixel of a region weighs 1 / (regions x its region's size): a found region counts 1 / regions
        w = np.where(flat > 0, 1.0 / (regions * sizes[flat]), 0.0)
        scores.append(amap.ravel())
        neg_w.append((~m).ravel() / total_neg)
        pos_w.append(w)
    s = np.concatenate(scores)
    order = np.argsort(-s, kind="mergesort")
    fpr = np.cumsum(np.concatenate(neg_w)[order])
    pro = np.cumsum(np.concatenate(pos_w)[order])
    # one point per distinct threshold: the last pixel of each run of equal scores
    s_sorted = s[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]
    return np.r_[0.0, fpr[last]], np.r_[0.0, pro[last]]


def aupro(
    maps: Sequence[npt.NDArray[np.floating]], masks: Sequence[npt.NDArray[np.bool_]], fpr_limit: float = 0.3
) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (1.0 = every region found before any false pixel)."""
    fpr, pro = pro_curve(maps, masks)
    keep = fpr <= fpr_limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < fpr_limit:  # interpolate the curve at the limit
        i = int(np.searchsorted(fpr, fpr_limit))
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], pro[i - 1], pro[i]
        y_lim = y0 + (y1 - y0) * (fpr_limit - x0) / max(x1 - x0, 1e-12)
        x, y = np.r_[x, fpr_limit], np.r_[y, y_lim]
    return float(np.trapezoid(y, x) / fpr_limit)
