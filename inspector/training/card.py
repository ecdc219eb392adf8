"""The model card: Markdown rendered from a version's ``meta.json`` and nothing else.

Every figure in the card comes from the stored metrics through the same formatting
functions the command line prints with, so the card says exactly what the evaluation
printed. The card is re-rendered whenever the version's meta changes (evaluation, export).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PR_CURVE = "pr_curve.png"
CONFUSION = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"


def f4(x: Any) -> str:
    """Metrics are shown with four decimals everywhere (card and terminal alike)."""
    return "n/a" if x is None else f"{float(x):.4f}"


def ms(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.1f} ms"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def target_verdict(target: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None) -> str | None:
    if not target or not evaluation:
        return None
    metric, need = str(target["metric"]), float(target["min"])
    got = evaluation.get(metric)
    if got is None:
        return None
    label = {"map50": "mAP50", "map50_95": "mAP50-95"}.get(metric, metric)
    verdict = "met" if float(got) >= need else "NOT met"
    return f"{label} >= {need:.2f} on {target.get('measured_on', 'the test split')}: **{verdict}** ({label} {f4(got)})"


def render_evaluation(ev: Mapping[str, Any]) -> str:
    """One evaluation as Markdown: headline metrics, per-class AP, confusion matrix, latency."""
    ds = ev.get("dataset", {})
    conf = ev.get("operating_confidence")
    lines = [
        f"Dataset `{ds.get('name', '?')}` (sha256 `{str(ds.get('sha256', ''))[:16]}`), split `{ev.get('split')}`: "
        f"{ev.get('images')} images, {ev.get('instances')} boxes; input {ev.get('imgsz')} px, "
        f"NMS IoU {ev.get('nms_iou')}, operating confidence {conf}.",
        "",
    ]
    lat = ev.get("latency_ms") or {}
    rows: list[list[Any]] = [
        ["mAP50", f4(ev.get("map50"))],
        ["mAP50-95", f4(ev.get("map50_95"))],
    ]
    tiled = ev.get("tiled") or {}
    if tiled:  # the rows above are ultralytics' validator on whole pictures; the station serves this
        tile = "x".join(str(v) for v in tiled.get("tile", ()))
        rows.append([f"mAP50 as served on {tile} px tiles (tiling {tiled.get('tiling')})", f4(tiled.get("map50"))])
    rows += [
        [f"precision at confidence {conf}", f4(ev.get("precision"))],
        [f"recall at confidence {conf}", f4(ev.get("recall"))],
    ]
    if lat:
        rows.append(
            [
                f"latency per image (one image at a time, {lat.get('threads')} threads, {lat.get('images')} images)",
                f"median {ms(lat.get('median'))}, p95 {ms(lat.get('p95'))}",
            ]
        )
    speed = ev.get("speed_ms_per_image") or {}
    if speed:
        rows.append(
            [
                "validator speed per image (batched)",
                f"preprocess {ms(speed.get('preprocess'))}, inference {ms(speed.get('inference'))}, "
                f"postprocess {ms(speed.get('postprocess'))}",
            ]
        )
    lines += _table(["metric", "value"], rows)
    per_class = ev.get("per_class") or {}
    if per_class:
        lines += ["", "Per class (precision and recall at the operating confidence):", ""]
        lines += _table(
            ["class", "images", "boxes", "AP50", "AP50-95", "precision", "recall"],
            [
                [
                    name,
                    c.get("images"),
                    c.get("instances"),
                    f4(c.get("ap50")),
                    f4(c.get("ap50_95")),
                    f4(c.get("precision")),
                    f4(c.get("recall")),
                ]
                for name, c in per_class.items()
            ],
        )
    cm = ev.get("confusion_matrix") or {}
    labels, matrix = cm.get("labels") or [], cm.get("matrix") or []
    if labels and matrix:
        keep = [
            i
            for i in range(len(labels))
            if any(matrix[i][j] for j in range(len(labels))) or any(matrix[j][i] for j in range(len(labels)))
        ]
        lines += [
            "",
            f"Confusion matrix at confidence {conf} (rows predicted, columns true; classes with no counts left out):",
            "",
        ]
        lines += _table(
            ["predicted \\ true", *(labels[j] for j in keep)],
            [[labels[i], *(matrix[i][j] for j in keep)] for i in keep],
        )
    if ev.get("operating_point"):
        lines += ["", *render_operating_point(ev["operating_point"])]
    return "\n".join(lines)


def _rate(value: Any, part: Any, whole: Any, none: str) -> str:
    return none if value is None else f"{f4(value)} ({part} of {whole})"


def render_operating_point(op: Mapping[str, Any]) -> list[str]:
    """What a person asks of the model as the station serves it: per-class recall and precision, pictures flagged."""
    thresholds = op.get("thresholds")
    at = (
        "per-class thresholds "
        + ", ".join(f"{k} {v:g}" for k, v in thresholds.items())
        + f", others {op.get('confidence')}"
        if thresholds
        else f"confidence {op.get('confidence')}"
    )
    pics = op.get("pictures") or {}
    lines = [
        f"At the operating point, as the station serves it ({at}; "
        f"a match is the same class at IoU >= {op.get('iou')}):",
        "",
    ]
    lines += _table(
        ["class", "true boxes", "kept predictions", "matched", "recall", "precision"],
        [
            [name, c.get("truths"), c.get("predictions"), c.get("matched"), f4(c.get("recall")), f4(c.get("precision"))]
            for name, c in (op.get("per_class") or {}).items()
        ],
    )
    none_defective, none_clean = (
        "n/a (no defective pictures in this split)",
        "n/a (no defect-free pictures in this split)",
    )
    pictures = (
        ("defective pictures flagged at all (any kept defect prediction)", "detection_rate", "flagged", "defective"),
        ("defective pictures with a defect found (matched)", "found_rate", "found", "defective"),
        ("false alarms on clean pictures", "false_alarm_rate", "false_alarms", "clean"),
    )
    rows = [
        [
            label,
            _rate(pics.get(rate), pics.get(part), pics.get(whole), none_clean if whole == "clean" else none_defective),
        ]
        for label, rate, part, whole in pictures
    ]
    lines += ["", *_table(["pictures", "value"], rows)]
    misses = op.get("worst_misses") or []
    if misses:
        sheet = op.get("contact_sheet")
        lines += [
            "",
            f"Worst misses ({len(misses)} largest of {op.get('missed_defects')} missed defects"
            + (f", drawn in `{sheet}`" if sheet else "")
            + "):",
            "",
        ]
        lines += _table(
            ["picture", "class", "box (x1, y1, x2, y2)", "area px"],
            [
                [
                    f"`{m.get('picture', m.get('image'))}`",
                    m.get("class"),
                    ", ".join(f"{v:g}" for v in m.get("xyxy", [])),
                    f"{m.get('area', 0):g}",
                ]
                for m in misses
            ],
        )
    else:
        lines += ["", "No defect missed at the operating point."]
    return lines


def render_parity(fmt: str, exp: Mapping[str, Any]) -> str:
    p = exp.get("parity") or {}
    return (
        f"{fmt}: `{exp.get('file')}` ({exp.get('bytes', 0) / 1e6:.1f} MB). Parity with PyTorch on "
        f"{p.get('images')} images at confidence {p.get('confidence')}: largest confidence difference "
        f"{p.get('max_confidence_diff', float('nan')):.2e}, matched-box IoU mean {f4(p.get('mean_iou'))} "
        f"(min {f4(p.get('min_iou'))}), {p.get('matched')} boxes matched, {p.get('unmatched_reference')} only in "
        f"PyTorch, {p.get('unmatched_export')} only in {fmt}"
        + (
            f"; raw head outputs: largest class-score difference {p['raw_max_diff']['scores']:.2e}, "
            f"largest box difference {p['raw_max_diff']['boxes_px']:.2e} px"
            if isinstance(p.get("raw_max_diff"), dict)
            else ""
        )
        + f". Verdict: **{'pass' if p.get('ok') else 'FAIL'}**."
    )


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.1f}%"


_VERDICT_ROWS = (
    ("grade_exact", "grade exact"),
    ("costly_miss", "costly misses: deserves C/D, graded A/B (of C/D items)"),
    ("optimistic_miss", "optimistic misses: deserves B, graded A (of B items)"),
    ("false_alarm", "false alarms: deserves A, graded C/D (of A items)"),
    ("manual_review", "sent to manual review"),
    ("disposition_agreement", "disposition agrees with the deserved grade's"),
    ("money_left_share", "money left on the table (of the value at stake)"),
)


def render_verdicts(v: Mapping[str, Any]) -> str:
    """The item-level evaluation as Markdown: each item graded from its true boxes and by the station."""
    source = v.get("source") or {}
    where = ", ".join(f"{k} {val}" for k, val in source.items())
    det = v.get("detector") or {}
    kept_by = (
        "the per-class operating points below (the item class at confidence {})".format(det.get("confidence"))
        if det.get("class_thresholds")
        else f"confidence {det.get('confidence')}"
    )
    blind = "on" if (v.get("grading") or {}).get("blind_spots") else "off"
    lines = [
        f"{v.get('items')} items ({v.get('renders')} renders: {where}), evaluated {v.get('evaluated_at')} with "
        f"backend {det.get('backend')}, boxes kept by {kept_by}, tiling {det.get('tiling', 'off')}, "
        f"blind spots {blind}, rubric {v.get('rubric_version')}, "
        f"policy {v.get('policy_version')} (`inspector evaluate --items`). The grade an item deserves is the "
        "rubric's grade of its true boxes; the grade it gets is the served pipeline's.",
        "",
    ]
    rows = [[label, _pct(v.get(key))] for key, label in _VERDICT_ROWS]
    rows.append(["money left on the table", f"{v.get('money_left')} of {v.get('value_at_stake')} {v.get('currency')}"])
    rows.append(["calibration error of the grade probability (ECE, 10 bins)", f4(v.get("calibration_error"))])
    lines += _table(["item-level figure", "value"], rows)
    conf = v.get("confusion") or {}
    levels = conf.get("levels") or []
    if levels:
        lines += ["", "Grade confusion (rows: deserved, columns: graded):", ""]
        lines += _table(["", *levels], [[lv, *row] for lv, row in zip(levels, conf.get("matrix") or [], strict=False)])
    fams: Mapping[str, Any] = v.get("per_family") or {}
    if fams:
        lines += ["", "Per family:", ""]
        lines += _table(
            ["family", "items", "exact", "costly", "B->A", "false alarms", "review", "money left"],
            [
                [
                    f,
                    r.get("items"),
                    *(_pct(r.get(k)) for k in ("grade_exact", "costly_miss", "optimistic_miss", "false_alarm")),
                    _pct(r.get("manual_review")),
                    _pct(r.get("money_left_share")),
                ]
                for f, r in fams.items()
            ],
        )
    return "\n".join(lines)


def render_operating_points(rec: Mapping[str, Any]) -> str:
    """Per-class operating points chosen by cost: what the station serves and the misses it still has."""
    ds = rec.get("dataset") or {}
    tiling = rec.get("tiling", "off")
    view = f"on native-resolution tiles (tiling {tiling}) " if tiling != "off" else ""
    lines = [
        f"Chosen on `{ds.get('name', '?')}` split `{rec.get('split')}` ({rec.get('images')} images), model run {view}"
        f"at confidence {rec.get('run_confidence')}, matched at IoU >= {rec.get('match_iou')}, costs from "
        f"`{rec.get('costs')}`: each class's threshold minimises cost_miss x misses + cost_false x false alarms.",
        "",
    ]
    lines += _table(
        ["class", "threshold", "recall", "precision", "boxes", "misses", "false alarms", "cost miss / false"],
        [
            [
                name,
                f"{float(c['threshold']):.2f}",
                f4(c.get("recall")),
                f4(c.get("precision")),
                c.get("truths"),
                c.get("misses"),
                c.get("false_alarms"),
                f"{c.get('cost_miss')} / {c.get('cost_false')}",
            ]
            for name, c in (rec.get("classes") or {}).items()
        ],
    )
    rates: Mapping[str, Mapping[str, float]] = rec.get("base_rate") or {}
    if rates:
        names = sorted({n for r in rates.values() for n in r})
        items = rec.get("items") or {}
        lines += [
            "",
            "Base rates (share of the items that carry the class; the grader's prior for a missed defect):",
            "",
        ]
        lines += _table(
            ["family", "items", *names],
            [[fam, items.get(fam, ""), *(f"{float(r.get(n, 0.0)):.3f}" for n in names)] for fam, r in rates.items()],
        )
    return "\n".join(lines)


def figures_of(meta: Mapping[str, Any]) -> dict[str, str]:
    """The figures a version's stored numbers can draw (kind -> file beside the card).

    The pictures are not kept with the version: ``inspector models plots`` draws them from these
    numbers, so the card links only those it can draw.
    """
    out: dict[str, str] = {}
    if ((meta.get("training") or {}).get("curves") or {}).get("epoch"):
        out["training_curves"] = TRAINING_CURVES
    key = meta.get("primary_evaluation")
    primary = (meta.get("evaluations") or {}).get(key) if isinstance(key, str) else None
    if primary:
        if (primary.get("pr_curve") or {}).get("precision"):
            out["pr_curve"] = PR_CURVE
        if (primary.get("confusion_matrix") or {}).get("matrix"):
            out["confusion_matrix"] = CONFUSION
    return out


def _figure_line(alt: str, file: str, version: Any) -> str:
    return f"![{alt}]({file}) (generated by `inspector models plots {version}`)"


def _stages(stages: Sequence[Mapping[str, Any]], total_minutes: Any) -> list[str]:
    """A model trained in a chain of stages (``make model``): each stage's version, data size and time."""
    if not stages:
        return []
    total = float(total_minutes) if total_minutes is not None else sum(float(s["seconds"]) for s in stages) / 60
    budget = [s.get("budget_min") for s in stages]
    rows = [
        [
            s.get("stage", i + 1),
            s.get("version"),
            s.get("recipe"),
            s.get("size", ""),
            "" if s.get("budget_min") is None else f"{s['budget_min']:g} min",
            f"{float(s['seconds']) / 60:.1f} min",
        ]
        for i, s in enumerate(stages)
    ]
    out = ["", f"Trained in {len(stages)} stages, each from the version before it:", ""]
    out += _table(["stage", "version", "recipe", "render", "budget", "trained"], rows)
    of_budget = f" of a {sum(float(b) for b in budget if b is not None):g}-min budget" if None not in budget else ""
    return [*out, "", f"All stages together trained for {total:.1f} min{of_budget}."]


def render_card(meta: Mapping[str, Any]) -> str:
    """The whole card for one version."""
    version = meta.get("version", "?")
    recipe = meta.get("recipe") or {}
    training = meta.get("training") or {}
    dataset = meta.get("dataset") or {}
    evals: Mapping[str, Any] = meta.get("evaluations") or {}
    primary_key = meta.get("primary_evaluation")
    primary = evals.get(primary_key) if isinstance(primary_key, str) else None
    names = meta.get("class_names") or dataset.get("names") or []
    git = meta.get("git") or {}
    hw = meta.get("hardware") or {}
    sw = meta.get("software") or {}

    lines = [f"# Model card: {version}", ""]
    if recipe.get("description"):
        lines += [str(recipe["description"]).strip(), ""]
    lines += [f"Detects {len(names)} classes: {', '.join(names)}.", ""]
    if recipe.get("role") == "pretrain":
        lines += [
            "Role: **pretraining checkpoint**, a starting point for fine-tuning, not a model to serve: "
            "`inspector train --init pretrain` (or this version's name) transfers its backbone and neck "
            "and resizes its head to the new dataset's classes.",
            "",
        ]
    verdict = target_verdict(meta.get("target"), primary)
    if verdict:
        lines += [f"Target: {verdict}.", ""]
    elif meta.get("target"):
        lines += ["Target: not evaluated yet.", ""]

    lines += ["## Summary", ""]
    summary = [
        ["version", version],
        ["created", meta.get("created_at")],
        ["recipe", f"{recipe.get('name')} (`recipe.yaml`)"],
        ["architecture", f"{recipe.get('model')} at {meta.get('imgsz')} px"],
        ["started from", meta.get("init", "scratch")],
        ["weights", f"`weights.pt`, {int(meta.get('weights_bytes', 0)) / 1e6:.1f} MB"],
        ["weights sha256", f"`{meta.get('weights_sha256')}`"],
    ]
    if primary:
        summary += [
            ["mAP50 (primary evaluation)", f4(primary.get("map50"))],
            ["mAP50-95 (primary evaluation)", f4(primary.get("map50_95"))],
        ]
    verdicts = meta.get("item_verdicts") or {}
    if verdicts:
        n = verdicts.get("items")
        summary += [
            [f"grade exact (item-level, {n} items)", _pct(verdicts.get("grade_exact"))],
            ["costly misses (deserves C/D, graded A/B)", _pct(verdicts.get("costly_miss"))],
            ["money left on the table (share of the value at stake)", _pct(verdicts.get("money_left_share"))],
        ]
    lines += _table(["", ""], summary)

    lines += ["", "## Training data", ""]
    lines += [
        f"Dataset `{dataset.get('name')}` from `{dataset.get('data_yaml')}`, content sha256 `{dataset.get('sha256')}` "
        "(every image and label file of every split).",
        "",
    ]
    splits = {k: v for k, v in (dataset.get("splits") or {}).items() if v.get("images")}
    if splits:
        lines += _table(
            ["split", "images", "boxes", "images without boxes", "sha256"],
            [
                [s, v.get("images"), v.get("boxes"), v.get("images_without_boxes"), f"`{str(v.get('sha256'))[:16]}`"]
                for s, v in splits.items()
            ],
        )

    lines += ["", "## Training", ""]
    budget = training.get("time_budget_min")
    rows = [
        [
            "training time",
            f"{float(training.get('seconds', 0)) / 60:.1f} min" + (f" (budget {budget} min)" if budget else ""),
        ],
        ["epochs", f"{training.get('epochs_run')} run of {training.get('epochs_planned')} planned"],
        ["batch, seed", f"{recipe.get('batch')}, {recipe.get('seed')}"],
        [
            "hardware",
            f"{hw.get('cpu')}, {hw.get('usable_cores')} cores, {hw.get('threads')} threads, {hw.get('ram_gb')} GB RAM",
        ],
        # the device trained on and its precision (older versions record neither: they trained on the CPU)
        [
            "device",
            f"{hw.get('device', 'cpu')}"
            + (f" ({hw['device_name']})" if hw.get("device_name") else "")
            + (f", {training['precision']}" if training.get("precision") else ""),
        ],
    ]
    if training.get("images_per_s") is not None:
        rows.append(
            [
                "training throughput",
                f"{training['images_per_s']} samples/s over the run, validation included "
                f"({training.get('images_seen')} samples)",
            ]
        )
    if hw.get("conv_gflops_at_start") is not None:
        # a time-budgeted run on a slowed machine trains less: this says how fast it was
        rows.append(
            [
                "machine speed (fp32 conv)",
                f"{hw['conv_gflops_at_start']} GFLOP/s at the start, {hw.get('conv_gflops_at_end')} at the end",
            ]
        )
    rows += [
        ["software", ", ".join(f"{k} {v}" for k, v in sw.items())],
        ["git commit", f"`{git.get('commit')}`" + (" (uncommitted changes)" if git.get("dirty") else "")],
    ]
    val = training.get("final_val") or {}
    if val:
        rows.append(
            [
                "validation split at the end of training",
                f"mAP50 {f4(val.get('map50'))}, mAP50-95 {f4(val.get('map50_95'))}",
            ]
        )
    lines += _table(["", ""], rows)
    advice = meta.get("recipe_advice") or []
    if advice:  # a recipe chosen from the data: why each setting is what it is
        lines += ["", "Recipe: " + str(advice[0]), "", *(f"- {str(a).strip()}" for a in advice[1:])]
    lines += _stages(training.get("stages") or [], training.get("total_minutes"))
    aids = meta.get("small_data") or []
    if aids:
        lines += ["", "Data aids used: " + "; ".join(aids) + "."]
    source = meta.get("source_dataset") or {}
    if source:
        lines += [
            "",
            f"Derived from dataset `{source.get('name')}` (`{source.get('data_yaml')}`, "
            f"sha256 `{source.get('sha256')}`).",
        ]
    figures = figures_of(meta)
    if "training_curves" in figures:
        lines += ["", _figure_line("training curves", TRAINING_CURVES, version)]

    if primary:
        lines += ["", f"## Evaluation: {primary_key}", "", render_evaluation(primary)]
        if "pr_curve" in figures:
            lines += ["", _figure_line("precision-recall curve", PR_CURVE, version)]
        if "confusion_matrix" in figures:
            lines += ["", _figure_line("confusion matrix", CONFUSION, version)]
    else:
        lines += [
            "",
            "## Evaluation",
            "",
            "Not evaluated yet: run `inspector evaluate --model VERSION --data DATASET`.",
        ]
    if verdicts:
        lines += ["", "## Item-level verdicts", "", render_verdicts(verdicts)]
    others = {k: v for k, v in evals.items() if k != primary_key}
    if others:
        lines += ["", "### Other evaluations", ""]
        lines += _table(
            ["evaluation", "evaluated", "mAP50", "mAP50-95", "precision", "recall"],
            [
                [
                    k,
                    v.get("evaluated_at"),
                    f4(v.get("map50")),
                    f4(v.get("map50_95")),
                    f4(v.get("precision")),
                    f4(v.get("recall")),
                ]
                for k, v in others.items()
            ],
        )

    operating = meta.get("operating_points")
    if operating:
        lines += ["", "## Operating points", "", render_operating_points(operating)]

    exports: Mapping[str, Any] = meta.get("exports") or {}
    if exports:
        lines += ["", "## Exports", ""]
        for fmt, exp in exports.items():
            lines += [f"- {render_parity(fmt, exp)}"]

    lines += [
        "",
        "## Limits",
        "",
        "- The figures hold for the data named above. A different camera, lighting or product mix needs "
        "its own evaluation before this model is trusted there.",
        "- Precision and recall depend on the operating confidence; the station's detector threshold "
        "should match the one stated here.",
    ]
    if meta.get("notes"):
        lines += [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"
