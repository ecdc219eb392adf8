"""Box geometry: centre form, IoU, class-aware NMS."""

from __future__ import annotations

import numpy as np

from inspector.boxes import cxcywh_to_xyxy, iou_matrix, nms


def test_centre_form_becomes_corners_in_the_same_dtype() -> None:
    out = cxcywh_to_xyxy(np.array([[50, 40, 20, 10]], dtype=np.float32))
    np.testing.assert_array_equal(out, [[40, 35, 60, 45]])
    assert out.dtype == np.float32


def test_iou_of_disjoint_nested_and_empty_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [0, 0, 5, 10], [20, 20, 30, 30], [3, 3, 3, 3]], dtype=np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.5, 0.0, 0.0]])
    assert iou_matrix(a, b[:0]).shape == (1, 0)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.6, 0.9, 0.8, 0.5], dtype=np.float32)
    classes = np.array([0, 0, 1, 0], dtype=np.int64)
    # box 0 overlaps box 1 (same class, IoU 0.82) and goes; box 2 is another class and stays
    assert nms(boxes, scores, classes, iou=0.5, max_det=10).tolist() == [1, 2, 3]
    assert nms(boxes, scores, classes, iou=0.9, max_det=10).tolist() == [1, 2, 0, 3]
    assert nms(boxes, scores, classes, iou=0.5, max_det=2).tolist() == [1, 2]
    assert nms(boxes[:0], scores[:0], classes[:0], iou=0.5, max_det=2).tolist() == []
