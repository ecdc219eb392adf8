// The result panel: the inspection on the page (grade, disposition, reasons, alternatives, decision, views).
// A new result never replaces one while an override or a flag is being keyed in: it waits until that is done.

import { api } from "./api.js";
import { $, el, message } from "./dom.js";
import { errorText, noteText, reasonText } from "./explain.js";
import { money, onLanguage, percent, t, term, time, tNodes } from "./i18n.js";
import { reloadHistory } from "./history.js";
import { probe } from "./probe.js";
import { renderReturn } from "./returns.js";
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
  message(t("msg.just_arrived"), "bad");
  return true;
}

export async function show(id) {
  let insp;
  try {
    insp = await api(`/v1/inspections/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status !== 401) message(t("msg.cannot_load", { id, error: errorText(e) }), "bad");
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
  gradeEl.textContent = g.level ? term("grade", g.level) : "?";
  gradeEl.className = `grade g-${g.level}`;
  const probs = Object.entries(g.probabilities || {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, v]) => `${term("grade", k)} ${percent(v)}`)
    .join(" · ");
  $("grade-conf").textContent = probs;
  $("disposition").textContent = term("path", d.path);
  const rule = d.rule ? ` · ${t("result.rule", { rule: term("rule", d.rule) })}` : "";
  $("disp-value").textContent = `${t("result.expected", { value: money(d.expected_value) })}${rule}`;

  const when = time(insp.created_at);
  const code = [item.rma, item.lpn].filter(Boolean).join(" / ") || t("result.no_rma");
  $("insp-meta").textContent = `${when} · ${code} · ${String(insp.id).slice(0, 12)}`;
  renderReturn(insp);

  const reasons = [...(g.reasons || []), ...(d.reasons || [])];
  const said = reasons.map((r) => el("li", { dataset: { code: r.code || "" } }, reasonText(r, g)));
  $("reasons").replaceChildren(...(said.length ? said : [el("li", {}, t("result.no_reasons"))]));

  const alts = [...(d.alternatives || [])].sort((a, b) => b.expected_value - a.expected_value);
  $("alternatives").tBodies[0].replaceChildren(
    ...alts.map((a) =>
      el(
        "tr",
        { class: a.path === d.path ? "chosen" : a.allowed === false ? "blocked" : "" },
        el("td", {}, term("path", a.path)),
        el("td", { class: "num" }, money(a.expected_value)),
        el("td", {}, a.note ? noteText(a.note) : a.allowed === false ? t("note.not_allowed") : ""),
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
    box.textContent = t("decision.pending");
    box.className = "decision";
    return;
  }
  if (last.action === "accept") {
    box.replaceChildren(...tNodes("decision.accepted", { actor: last.actor }, ["actor"]));
    box.className = "decision accepted";
  } else {
    const said = {
      grade: term("grade", final.grade),
      path: term("path", final.disposition),
      reason: term("override_reason", last.reason_code),
      actor: last.actor,
    };
    box.replaceChildren(...tNodes("decision.overridden", said, ["actor"]));
    box.className = "decision overridden";
  }
}

// The shown inspection again in another language.
onLanguage(() => {
  if (shown) render(shown);
});
