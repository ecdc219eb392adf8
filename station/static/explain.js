// What the server says, in the page's language: the grade's and the recommendation's reasons (by their code and
// raw params), the alternatives' notes, and errors (by the problem's code; its English detail only as a fallback).

import { known, list, money, number, percent, t, term } from "./i18n.js";

const grades = (g) => (g ? term("grade", g) : "");
const paths = (ps) => list((ps || []).map((p) => term("path", p)));
const flags = (fs) => list((fs || []).map((f) => term("item_flag", f)));

// Why detections were ignored: the grader's English sentence -> a message.
const IGNORED = [
  [/^class '(.+)' is not in the rubric$/, (m) => t("ignored.not_in_rubric", { defect: term("defect", m[1]) })],
  [/^confidence ([\d.]+) below ([\d.]+)$/, (m) => t("ignored.low_confidence", { confidence: number(Number(m[1]), 2), limit: number(Number(m[2]), 2) })],
  [/^no item in this view$/, () => t("ignored.no_item")],
  [/^not on the item$/, () => t("ignored.off_item")],
];

function because(text) {
  for (const [pattern, say] of IGNORED) {
    const m = pattern.exec(text || "");
    if (m) return say(m);
  }
  return text;
}

// Why the item is defective, for the vendor-return reasons: its flags and its grade.
function defective(p) {
  return list([...(p.flags || []).map((f) => term("item_flag", f)), ...(p.grade ? [t("reason.grade_word", { grade: p.grade })] : [])]);
}

// Which rubric or value table the retailer's category went to, and by which entry of the taxonomy.
function mapping(p, target) {
  if (p.category === null || p.category === undefined) return ["reason.mapping_unknown", { target }];
  if (!p.entry) return ["reason.mapping_unmapped", { category: p.category, target }];
  return ["reason.mapping_mapped", { category: p.category, entry: [p.entry, ...(p.via || [])].join(" → "), version: p.version, target }];
}

// Each reason code -> [message key, its params as shown]; ``g`` is the inspection's grade (for its probabilities).
const REASONS = {
  grade: (p, g) => {
    const shown = { grade: grades(p.grade), rubric: term("category", p.rubric), version: p.version, views: p.views };
    if (!p.found) return [p.views > 1 ? "reason.grade_clean_views" : "reason.grade_clean", shown];
    const probs = Object.entries((g && g.probabilities) || {})
      .filter(([, v]) => v > 0.0005)
      .map(([k, v]) => `${grades(k)} ${number(v, 2)}`)
      .join(", ");
    return ["reason.grade", { ...shown, probability: number(p.probability, 2), probabilities: probs }];
  },
  empty: (p) => [p.views > 1 ? "reason.empty_views" : "reason.empty", { views: p.views }],
  unreadable: (p) => ["reason.unreadable", { view: p.view, problems: list((p.problems || []).map((q) => term("quality", q.replace(/ /g, "_")))) }],
  wrong_item: (p) => ["reason.wrong_item", { family: term("category", p.family), confidence: number(p.confidence, 2), expected: term("category", p.expected) }],
  family_disagrees: (p) => [
    "reason.family_disagrees",
    { family: term("category", p.family), confidence: number(p.confidence, 2), threshold: number(p.threshold, 2), expected: term("category", p.expected) },
  ],
  family_category: (p) => ["reason.family_category", { family: term("category", p.family), confidence: number(p.confidence, 2) }],
  generic_rubric: (p) => (p.rubric ? REASONS.category_mapped(p) : ["reason.generic_rubric", {}]),
  learned: (p) => ["reason.learned", { category: term("category", p.category), version: p.version }],
  opened: (p) => ["reason.opened", { confidence: number(p.confidence, 2), view: p.view }],
  ignored: (p) => ["reason.ignored", { count: p.count, because: because(p.because) }],
  view_without_item: (p) => ["reason.view_without_item", { view: p.view }],
  blind_spot: (p) => [
    "reason.blind_spot",
    {
      probability: percent(p.probability, 1),
      likely: list((p.likely || []).map((h) => `${term("defect", h.defect)} ${percent(h.probability, 1)}`)),
    },
  ],
  unexplained_damage: (p) => [
    p.review ? "reason.unexplained_review" : "reason.unexplained",
    { area: percent(p.area, 1), score: number(p.score, 2), threshold: number(p.threshold, 2), view: p.view, grade: grades(p.grade) },
  ],
  "defect:": (p) => [
    "reason.defect",
    {
      defect: term("defect", p.defect),
      zone: term("zone", p.zone),
      area: percent(p.area, 1),
      confidence: number(p.confidence, 2),
      view: p.view,
      severity: number(p.severity, 1),
      effect: p.grade ? t("reason.grade_word", { grade: p.grade }) : t("reason.no_effect"),
    },
  ],
  "count:": (p) => ["reason.count", { count: p.count, defect: term("defect", p.defect), severity: number(p.severity, 1), grade: p.grade }],
  "flag:": (p) => ["reason.flag", { flag: term("item_flag", p.flag), severity: number(p.severity, 1), grade: p.grade }],
  input: (p) =>
    p.sku
      ? ["reason.input", { grade: grades(p.grade), confidence: number(p.confidence, 2), sku: p.sku, category: term("category", p.category), price: money(p.price, p.currency) }]
      : [p.category ? "reason.input_unknown_category" : "reason.input_unknown", { grade: grades(p.grade), confidence: number(p.confidence, 2), category: term("category", p.category) }],
  opened_seen: () => ["reason.opened_seen", {}],
  best_value: (p) => [
    p.next ? "reason.best_value_next" : "reason.best_value",
    { path: term("path", p.path), value: money(p.value, p.currency), next: term("path", p.next), next_value: money(p.next_value, p.currency) },
  ],
  regret: (p) => ["reason.regret", { regret: money(p.regret, p.currency), limit: money(p.limit, p.currency) }],
  vendor_window_unknown: (p) => ["reason.vendor_window_unknown", { why: defective(p) }],
  vendor_window_closed: (p) => ["reason.vendor_window_closed", { why: defective(p), days: p.days, window: p.window }],
  vendor_forbidden: (p) => ["reason.vendor_forbidden", { rule: term("rule", p.rule) }],
  "rule:": (p, g, code) => {
    const rule = code.slice("rule:".length);
    if (p.forbids) return ["reason.rule_forbids", { rule: term("rule", rule), paths: paths(p.forbids) }];
    if (rule === "held") return [p.wrong_item ? "reason.held_wrong_item" : "reason.held_counterfeit", {}];
    if (rule === "battery_hazard") return ["reason.battery_hazard", { flags: flags(p.flags) }];
    if (rule === "recalled") return ["reason.recalled", { sku: p.sku }];
    if (rule === "vendor_return") return ["reason.vendor_return", { why: defective(p), days: p.days, window: p.window }];
    return [`reason.rule_${rule}`, {}];
  },
  "review:": (p, g, code) => {
    const rule = code.slice("review:".length);
    const shown = {
      grade: grades(p.grade),
      category: term("category", p.category),
      regret: money(p.regret, p.currency),
      limit: rule === "expected_regret" ? money(p.limit, p.currency) : number(p.limit, 2),
      confidence: number(p.confidence, 2),
      sku: p.sku,
      area: p.area === undefined ? "" : percent(p.area, 1),
    };
    if (rule === "unknown_value") return [p.sku ? "reason.review_unknown_sku" : "reason.review_no_sku", shown];
    return [`reason.review_${rule}`, shown];
  },
  category_mapped: (p) => mapping(p, t("reason.rubric_target", { rubric: term("category", p.rubric) })),
  value_table: (p) => mapping(p, t("reason.table_target", { table: term("category", p.value_table) })),
};

// The reasons said without any figure (an inspection stored before reasons carried their params has none).
const PLAIN = new Set(["generic_rubric", "opened_seen", "rule:unreadable", "rule:empty"]);

// A reason in the page's language; the server's own sentence when its code or params are not known here.
export function reasonText(r, grade) {
  const code = r.code || "";
  const prefix = code.includes(":") ? code.slice(0, code.indexOf(":") + 1) : code;
  const say = REASONS[code] || REASONS[prefix];
  if (!say || (!Object.keys(r.params || {}).length && !PLAIN.has(code))) return r.text;
  try {
    const [key, params] = say(r.params || {}, grade, code);
    return t(key, params);
  } catch (_) {
    return r.text;
  }
}

// The note beside an alternative ("forbidden by hygiene_opened; value unknown") -> messages, part by part.
const NOTES = [
  [/^chosen$/, () => t("note.chosen")],
  [/^forbidden by (\S+)$/, (m) => t("note.forbidden", { rule: term("rule", m[1]) })],
  [/^only for a defective item inside its vendor window$/, () => t("note.vendor_only")],
  [/^only for a recalled SKU$/, () => t("note.recall_only")],
  [/^only for a swollen or leaking battery$/, () => t("note.battery_only")],
  [/^a person decides after inspecting the item$/, () => t("note.review")],
  [/^not a channel of this policy$/, () => t("note.no_channel")],
  [/^not offered for (.+)$/, (m) => t("note.not_offered", { category: term("category", m[1]) })],
  [/^value unknown$/, () => t("note.value_unknown")],
];

export function noteText(note) {
  return String(note || "")
    .split("; ")
    .filter(Boolean)
    .map((part) => {
      for (const [pattern, say] of NOTES) {
        const m = pattern.exec(part);
        if (m) return say(m);
      }
      return part;
    })
    .join("; ");
}

// An error for the operator: the problem's code when the catalogue knows it, else its detail.
export function errorText(e) {
  if (!e) return "";
  if (e.status === 0) return t("problem.offline");
  const key = `problem.${e.code}`;
  if (e.code && known(key)) return t(key);
  return e.message ? t("problem.other", { status: e.status, detail: e.message }) : t("problem.status", { status: e.status });
}
