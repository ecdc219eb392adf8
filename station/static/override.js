// Override: a number key picks another grade or disposition, a second number key the reason code.

import { $, el, message, money, pretty } from "./dom.js";
import { decide } from "./decision.js";
import { current, holdWhile, justArrived, onChange, onShow, showPending } from "./result.js";

const GRADES = ["A", "B", "C", "D"];
const REASONS = [
  ["missed_damage", "damage the camera missed"],
  ["no_damage", "the marked damage is not there"],
  ["wrong_item", "wrong or different item"],
  ["missing_parts", "parts or accessories missing"],
  ["not_functional", "fails the function test"],
  ["packaging", "packaging opened or damaged"],
  ["hygiene_safety", "hygiene or safety"],
  ["policy_exception", "customer or vendor agreement"],
  ["other", "other"],
];

let choice = null; // the grade or disposition picked, waiting for its reason

export const overriding = () => choice !== null;

function overrideOptions(insp) {
  if (!insp) return [];
  const g = insp.grade || {};
  const d = insp.disposition || {};
  const options = GRADES.filter((x) => x !== g.level).map((x) => ({ kind: "grade", value: x, label: `grade ${x}` }));
  const alts = [...(d.alternatives || [])]
    .filter((a) => a.path !== d.path)
    .sort((a, b) => (b.allowed !== false) - (a.allowed !== false) || b.expected_value - a.expected_value);
  for (const a of alts) {
    if (options.length >= 9) break;
    options.push({ kind: "disposition", value: a.path, label: `${pretty(a.path)} (${money(a.expected_value)})` });
  }
  return options.slice(0, 9);
}

function render() {
  const panel = $("override");
  const list = $("override-options");
  const insp = current();
  if (!insp) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  if (choice) {
    $("override-title").textContent = `Reason for ${choice.label}: pick with 1–9, Esc to cancel`;
    list.replaceChildren(...REASONS.map(([code, text], i) => el("li", { dataset: { code } }, el("kbd", {}, i + 1), ` ${text}`)));
  } else {
    $("override-title").textContent = "Override: pick with 1–9";
    list.replaceChildren(...overrideOptions(insp).map((o, i) => el("li", {}, el("kbd", {}, i + 1), ` ${o.label}`)));
  }
}

export function startOverride(n) {
  if (justArrived()) return;
  const insp = current();
  const picked = overrideOptions(insp)[n - 1];
  if (!picked) {
    message(insp ? `No override ${n}.` : "Nothing to override yet.", "bad");
    return;
  }
  choice = picked;
  render();
  message(`Override to ${picked.label}: now pick the reason (1–9).`);
}

export function pickReason(n) {
  const reason = REASONS[n - 1];
  const picked = choice;
  if (!reason || !picked) return;
  choice = null;
  render();
  decide({ action: "override", [picked.kind]: picked.value, reason_code: reason[0] }).then(showPending);
}

export function cancelOverride() {
  choice = null;
  if (current()) render();
}

export function initOverride() {
  holdWhile(overriding);
  onShow(cancelOverride);
  onChange(render);
}
