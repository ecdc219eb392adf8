// Flags: M marks a defect the model missed (drag a box on a view if you like, then its class, or Enter for
// none); F marks a detection that is not a defect (pick it 1-9); U confirms a region of unexplained damage
// (pick it 1-9, then type its class: a new one is fine). All become label candidates; the decision is untouched.

import { api } from "./api.js";
import { $, el, message } from "./dom.js";
import { errorText } from "./explain.js";
import { number, onLanguage, percent, t, term } from "./i18n.js";
import { defectNames, loadLabelmap } from "./labelmap.js";
import { probe } from "./probe.js";
import { current, holdWhile, justArrived, onShow, redrawViews, showPending } from "./result.js";
import { repaint } from "./views.js";

let flag = null; // { kind, box, view, region } while a flag is being keyed in
const NEW_CLASS = /^[a-z][a-z0-9_]{0,63}$/; // as the server takes a class an operator coins
const START = { missed_defect: "flag.missed_start", false_defect: "flag.false_start", anomaly: "flag.anomaly_start" };

export const flagging = () => flag !== null;

function targets(insp) {
  const out = [];
  for (const v of (insp && insp.views) || []) {
    (v.detections || []).forEach((d, i) => out.push({ view: v.n, detection: d.index ?? i, det: d }));
  }
  return out.slice(0, 9);
}

// The unexplained regions of the anomaly model, over every view, that U can confirm.
function regions(insp) {
  const out = [];
  for (const v of (insp && insp.views) || []) {
    ((v.anomaly && v.anomaly.regions) || []).forEach((r, i) => out.push({ view: v.n, region: i, r }));
  }
  return out.slice(0, 9);
}

function renderAnomaly() {
  if (flag.region === null) {
    $("flag-title").textContent = t("flag.anomaly_title");
    $("flag-options").replaceChildren(
      ...regions(current()).map((x, i) =>
        el("li", {}, el("kbd", {}, i + 1), ` ${t("flag.region", { area: percent(x.r.share, 1), score: number(x.r.peak, 2), view: x.view + 1 })}`),
      ),
    );
    return;
  }
  $("flag-title").textContent = t("flag.anomaly_class", { n: flag.pick });
  const input = el("input", { id: "flag-class", maxlength: "64", spellcheck: "false", placeholder: t("flag.class_placeholder") });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      cancelFlag(false);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      ev.stopPropagation();
      const name = input.value.trim();
      if (!NEW_CLASS.test(name)) {
        message(t("flag.bad_class"), "bad");
        return;
      }
      send({ kind: "anomaly", view: flag.view, region: flag.region, class_name: name });
    }
  });
  $("flag-options").replaceChildren(el("li", { class: "flag-class" }, input));
  input.focus();
}

function render() {
  const panel = $("flag");
  if (!flag) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  if (flag.kind === "anomaly") {
    renderAnomaly();
  } else if (flag.kind === "missed_defect") {
    const defects = defectNames();
    if (!defects.length) loadLabelmap().then(() => flag && defectNames().length && render());
    const where = flag.box ? t("flag.box_drawn", { view: flag.view }) : t("flag.drag");
    $("flag-title").textContent = t("flag.missed_title", { where, n: defects.length });
    $("flag-options").replaceChildren(...defects.map((c, i) => el("li", { dataset: { cls: c } }, el("kbd", {}, i + 1), ` ${term("defect", c)}`)));
  } else {
    $("flag-title").textContent = t("flag.false_title");
    $("flag-options").replaceChildren(
      ...targets(current()).map((x, i) =>
        el("li", {}, el("kbd", {}, i + 1), ` ${t("flag.detection", { defect: term("defect", x.det.class_name), confidence: number(x.det.confidence, 2), view: x.view })}`),
      ),
    );
  }
}

export function startFlag(kind) {
  if (justArrived()) return;
  const insp = current();
  if (!insp) {
    message(t("flag.nothing"), "bad");
    return;
  }
  if (kind === "false_defect" && !targets(insp).length) {
    message(t("flag.no_detections"), "bad");
    return;
  }
  if (kind === "anomaly" && !regions(insp).length) {
    message(t("flag.no_regions"), "bad");
    return;
  }
  flag = { kind, box: null, view: 0, region: null };
  document.querySelectorAll("#views canvas").forEach((c) => c.classList.toggle("drawing", kind === "missed_defect"));
  render();
  message(t(START[kind]));
}

export function cancelFlag(quiet, resume = true) {
  const had = flag;
  flag = null;
  document.querySelectorAll("#views canvas").forEach((c) => c.classList.remove("drawing"));
  render();
  if (had && had.box && current()) redrawViews(); // clear the drawn box
  if (had && !quiet) message(t("flag.cancelled"));
  if (had && resume) setTimeout(showPending, 0); // a result that arrived meanwhile
}

async function send(body) {
  const insp = current();
  cancelFlag(true);
  if (!insp) return;
  try {
    await api(`/v1/inspections/${encodeURIComponent(insp.id)}/flags`, { method: "POST", json: body });
  } catch (e) {
    if (e.status !== 401) message(t("flag.not_saved", { error: errorText(e) }), "bad");
    return;
  }
  probe.flags.push({ id: insp.id, ...body });
  const what =
    body.kind === "anomaly"
      ? t("flag.what_anomaly", { defect: body.class_name })
      : body.kind === "missed_defect"
        ? t("flag.what_missed", { defect: body.class_name ? term("defect", body.class_name) : t("flag.any_defect") })
        : t("flag.what_false");
  message(t("flag.sent", { what }), "ok");
}

export function pickFlag(n) {
  if (!flag) return;
  if (flag.kind === "anomaly") {
    const target = regions(current())[n - 1];
    if (!target) {
      message(t("flag.no_region", { n }), "bad");
      return;
    }
    Object.assign(flag, { view: target.view, region: target.region, pick: n });
    render();
  } else if (flag.kind === "missed_defect") {
    const cls = defectNames()[n - 1];
    if (!cls) return;
    const body = { kind: "missed_defect", view: flag.view, class_name: cls };
    if (flag.box) body.box = flag.box;
    send(body);
  } else {
    const target = targets(current())[n - 1];
    if (!target) {
      message(t("flag.no_detection", { n }), "bad");
      return;
    }
    send({ kind: "false_defect", view: target.view, detection: target.detection });
  }
}

// Enter: a missed defect of no particular class.
export function sendUnclassified() {
  if (!flag || flag.kind !== "missed_defect") return false;
  const f = flag;
  send(f.box ? { kind: "missed_defect", view: f.view, box: f.box } : { kind: "missed_defect", view: f.view });
  return true;
}

// Dragging a box on a drawn view (one that carries its scale) while a missed defect is being flagged.
function enableDrawing() {
  let drag = null; // { canvas, start }
  const at = (canvas, ev) => {
    const r = canvas.getBoundingClientRect();
    return [((ev.clientX - r.left) * canvas.width) / r.width, ((ev.clientY - r.top) * canvas.height) / r.height];
  };
  const paint = (canvas, a, b) => {
    const ctx = repaint(canvas);
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#ff8c00";
    ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
    ctx.setLineDash([]);
  };
  const views = $("views");
  views.addEventListener("mousedown", (ev) => {
    const canvas = ev.target;
    if (!(canvas instanceof HTMLCanvasElement) || !canvas.dataset.scale) return;
    if (!flag || flag.kind !== "missed_defect") return;
    ev.preventDefault();
    drag = { canvas, start: at(canvas, ev) };
  });
  views.addEventListener("mousemove", (ev) => {
    if (drag && ev.target === drag.canvas) paint(drag.canvas, drag.start, at(drag.canvas, ev));
  });
  window.addEventListener("mouseup", (ev) => {
    if (!drag) return;
    const { canvas, start: a } = drag;
    drag = null;
    const end = at(canvas, ev);
    if (!flag || Math.abs(end[0] - a[0]) < 3 || Math.abs(end[1] - a[1]) < 3) return;
    const scale = Number(canvas.dataset.scale) || 1;
    const clamp = (v, hi) => Math.max(0, Math.min(hi, v / scale));
    const w = canvas.width / scale;
    const h = canvas.height / scale;
    flag.box = [clamp(Math.min(a[0], end[0]), w), clamp(Math.min(a[1], end[1]), h), clamp(Math.max(a[0], end[0]), w), clamp(Math.max(a[1], end[1]), h)].map((v) => Math.round(v * 10) / 10);
    flag.view = Number(canvas.dataset.view) || 0;
    paint(canvas, a, end);
    render();
  });
}

export function initFlags() {
  holdWhile(flagging);
  onShow(() => cancelFlag(true, false));
  enableDrawing();
  onLanguage(render);
}
