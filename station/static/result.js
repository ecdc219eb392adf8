// The result panel: the inspection on the page (grade, disposition, reasons, alternatives, decision, views).
// A new result never replaces one while an override or a flag is being keyed in: it waits until that is done.

import { api } from "./api.js";
import { $, el, message, money, pretty } from "./dom.js";
import { reloadHistory } from "./history.js";
import { probe } from "./probe.js";
import { drawViews } from "./views.js";

// A key pressed just as a new result lands was meant for the previous one: ask again.
const SETTLE_MS = 400;

let shown = null;
let shownLocalAt = 0;
let pendingId = null;
const holds = []; // () => true while the operator is keying something in about the shown inspection
const beforeShow = []; // run before another inspection takes the panel
const afterChange = []; // run once the shown inspection is rendered or refreshed

export const current = () => shown;
export const holdWhile = (busy) => holds.push(busy);
export const onShow = (fn) => beforeShow.push(fn);
export const onChange = (fn) => afterChange.push(fn);

export function justArrived() {
  if (performance.now() - shownLocalAt >= SETTLE_MS) return false;
  message("A new result just arrived: check it, then press the key again.", "bad");
  return true;
}

export async function show(id) {
  let insp;
  try {
    insp = await api(`/v1/inspections/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status !== 401) message(`Cannot load inspection ${id}: ${e.message}`, "bad");
    return;
  }
  for (const fn of beforeShow) fn();
  shown = insp;
  shownLocalAt = performance.now();
  render(insp);
  if (!(insp.id in probe.shownAt)) probe.shownAt[insp.id] = Date.now();
  document.body.dataset.shownId = insp.id;
  redrawViews();
}

// A fresh copy of the shown inspection (after a decision): its decision and what may follow it.
export function update(fresh) {
  if (!fresh || !shown || shown.id !== fresh.id) return;
  shown = fresh;
  renderDecision(fresh);
  for (const fn of afterChange) fn();
}

export function redrawViews() {
  const insp = shown;
  if (insp) drawViews(insp, () => shown === insp);
}

// A new inspection finished: show it now, or once the operator is done with the one on the page.
export function offer(id) {
  if (holds.some((busy) => busy())) pendingId = id;
  else show(id).then(() => reloadHistory(true));
}

export function showPending() {
  const id = pendingId;
  pendingId = null;
  if (id && (!shown || shown.id !== id)) show(id).then(() => reloadHistory(true));
}

function render(insp) {
  $("result-empty").hidden = true;
  $("result").hidden = false;
  const g = insp.grade || {};
  const d = insp.disposition || {};
  const item = insp.item || {};
  const gradeEl = $("grade");
  gradeEl.textContent = g.level === "WRONG_ITEM" ? "WRONG ITEM" : g.level || "?";
  gradeEl.className = `grade g-${g.level}`;
  const probs = Object.entries(g.probabilities || {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
    .join(" · ");
  $("grade-conf").textContent = probs;
  $("disposition").textContent = pretty(d.path);
  $("disp-value").textContent = `expected ${money(d.expected_value)}${d.rule ? ` · rule ${d.rule}` : ""}`;

  const when = insp.created_at ? new Date(insp.created_at).toLocaleTimeString() : "";
  const code = [item.rma, item.lpn].filter(Boolean).join(" / ") || "no RMA";
  $("insp-meta").textContent = `${when} · ${code} · ${String(insp.id).slice(0, 12)}`;

  const reasons = [...(g.reasons || []), ...(d.reasons || [])];
  $("reasons").replaceChildren(...(reasons.length ? reasons.map((r) => el("li", {}, r.text)) : [el("li", {}, "no reasons given")]));

  const alts = [...(d.alternatives || [])].sort((a, b) => b.expected_value - a.expected_value);
  $("alternatives").tBodies[0].replaceChildren(
    ...alts.map((a) =>
      el(
        "tr",
        { class: a.path === d.path ? "chosen" : a.allowed === false ? "blocked" : "" },
        el("td", {}, pretty(a.path)),
        el("td", { class: "num" }, money(a.expected_value)),
        el("td", {}, a.note || (a.allowed === false ? "not allowed" : "")),
      ),
    ),
  );
  renderDecision(insp);
  for (const fn of afterChange) fn();
}

function renderDecision(insp) {
  const box = $("decision");
  const final = insp.final || {};
  const decisions = insp.decisions || [];
  const last = decisions[decisions.length - 1];
  if (!final.decided || !last) {
    box.textContent = "pending: Enter accepts";
    box.className = "decision";
    return;
  }
  if (last.action === "accept") {
    box.textContent = `accepted by ${last.actor}`;
    box.className = "decision accepted";
  } else {
    box.textContent = `overridden to ${final.grade} · ${pretty(final.disposition)} (${pretty(last.reason_code)}) by ${last.actor}`;
    box.className = "decision overridden";
  }
}
