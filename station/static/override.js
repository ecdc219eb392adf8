// Override: a number key picks another grade or disposition, a second number key the reason code.

import { $, el, message } from "./dom.js";
import { decide } from "./decision.js";
import { money, onLanguage, t, term } from "./i18n.js";
import { current, holdWhile, justArrived, onChange, onShow, showPending } from "./result.js";

const GRADES = ["A", "B", "C", "D"];
// The reason codes, in key order; their names are the catalogues' override_reason.<code>.
const REASONS = [
  "missed_damage",
  "no_damage",
  "wrong_item",
  "missing_parts",
  "not_functional",
  "packaging",
  "hygiene_safety",
  "policy_exception",
  "other",
];

let choice = null; // the grade or disposition picked, waiting for its reason

export const overriding = () => choice !== null;

function overrideOptions(insp) {
  if (!insp) return [];
  const g = insp.grade || {};
  const d = insp.disposition || {};
  const options = GRADES.filter((x) => x !== g.level).map((x) => ({ kind: "grade", value: x }));
  const alts = [...(d.alternatives || [])]
    .filter((a) => a.path !== d.path)
    .sort((a, b) => (b.allowed !== false) - (a.allowed !== false) || b.expected_value - a.expected_value);
  for (const a of alts) {
    if (options.length >= 9) break;
    options.push({ kind: "disposition", value: a.path, expected: a.expected_value });
  }
  return options.slice(0, 9);
}

// An option's words, in the language of the moment.
function label(o) {
  if (o.kind === "grade") return t("override.grade", { grade: term("grade", o.value) });
  return t("override.path", { path: term("path", o.value), value: money(o.expected) });
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
    $("override-title").textContent = t("override.reason_title", { choice: label(choice) });
    list.replaceChildren(
      ...REASONS.map((code, i) => el("li", { dataset: { code } }, el("kbd", {}, i + 1), ` ${term("override_reason", code)}`)),
    );
  } else {
    $("override-title").textContent = t("override.title");
    list.replaceChildren(...overrideOptions(insp).map((o, i) => el("li", {}, el("kbd", {}, i + 1), ` ${label(o)}`)));
  }
}

export function startOverride(n) {
  if (justArrived()) return;
  const insp = current();
  const picked = overrideOptions(insp)[n - 1];
  if (!picked) {
    message(insp ? t("override.none", { n }) : t("override.nothing"), "bad");
    return;
  }
  choice = picked;
  render();
  message(t("override.pick_reason", { choice: label(picked) }));
}

export function pickReason(n) {
  const reason = REASONS[n - 1];
  const picked = choice;
  if (!reason || !picked) return;
  choice = null;
  render();
  decide({ action: "override", [picked.kind]: picked.value, reason_code: reason }).then(showPending);
}

export function cancelOverride() {
  choice = null;
  if (current()) render();
}

export function initOverride() {
  holdWhile(overriding);
  onShow(cancelOverride);
  onChange(render);
  onLanguage(() => current() && render());
}
