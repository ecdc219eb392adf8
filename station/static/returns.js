// The expected return at the bench: what the WMS announced for the RMA or LPN typed, scanned or read on the
// slip (SKU, price paid, reason, days since sale), the line picked by number key when the return holds several,
// and, with the result, which return line the item was. Without an expected return the item is inspected anyway.

import { api } from "./api.js";
import { $, el, message } from "./dom.js";
import { errorText } from "./explain.js";
import { money, number, onLanguage, t } from "./i18n.js";

// Every sentence of this panel is a "returns.*" key of the message catalogues (i18n/en.json, vi.json).
const say = (key, params = {}) => t(`returns.${key}`, params);

// The return on the panel: {code, lines, chosen, awaiting (a captured item waits for its line), state}.
let shown = null;
let awaitingId = null;

export const choosingLine = () => Boolean(shown && shown.lines.length > 1 && (shown.awaiting || shown.chosen === null));

function lineRow(line, chosen) {
  return el(
    "tr",
    { class: line.line === chosen ? "chosen" : "", dataset: { line: line.line } },
    el("td", {}, el("kbd", {}, line.line)),
    el("td", { translate: "no" }, line.sku || "–"), // the WMS's own words: shown as they come
    el("td", { class: "num" }, money(line.price)),
    el("td", { translate: "no" }, line.reason || "–"),
    el("td", { class: "num" }, number(line.days_since_sale)),
  );
}

function render() {
  const box = $("expected");
  if (!shown) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  box.className = `expected ${shown.state}`;
  const head = el("h3", {}, say("title", { code: shown.code }));
  if (shown.state !== "known") {
    box.replaceChildren(head, el("p", {}, shown.text));
    return;
  }
  const n = shown.lines.length;
  const hint = choosingLine() ? say(shown.awaiting ? "waiting" : "pick", { code: shown.code, n }) : "";
  const table = el(
    "table",
    {},
    el(
      "thead",
      {},
      el("tr", {}, ...["head_line", "head_sku", "head_price", "head_reason", "head_days"].map((k) => el("th", {}, say(k)))),
    ),
    el("tbody", {}, ...shown.lines.map((line) => lineRow(line, shown.chosen))),
  );
  box.replaceChildren(head, table, el("p", { class: "hint" }, hint));
}

async function fetchReturn(rma, lpn) {
  if (lpn && !rma) {
    const one = await api(`/v1/returns?lpn=${encodeURIComponent(lpn)}`);
    return { rma: one.rma, lines: [one], chosen: one.line };
  }
  const found = await api(`/v1/returns/${encodeURIComponent(rma)}?lookup=1`);
  const lines = [...(found.lines || [])].sort((a, b) => a.line - b.line);
  return { rma: found.rma || rma, lines, chosen: lines.length === 1 ? lines[0].line : null };
}

// The operator typed or scanned a code (or a capture waits for its line): show what is expected.
export async function lookUp(rma, lpn, awaiting = false) {
  const code = rma || lpn;
  if (!code) {
    shown = null;
    render();
    return;
  }
  shown = { code, lines: [], chosen: null, awaiting, state: "loading", text: say("looking", { code }) };
  render();
  const mine = shown;
  let next;
  try {
    const found = await fetchReturn(rma, lpn);
    next = { ...mine, code: found.rma, lines: found.lines, chosen: found.chosen, state: "known" };
  } catch (e) {
    if (e.status === 401) return;
    const down = [0, 502, 503, 504].includes(e.status);
    const text = e.status === 404 ? say("unknown", { code }) : down ? say("lookup_down", { code, detail: errorText(e) }) : errorText(e);
    next = { ...mine, state: e.status === 404 ? "unknown" : "failed", text };
  }
  if (shown !== mine) return; // another code was typed meanwhile
  shown = next;
  render();
}

async function sendLine(line) {
  try {
    await api("/station/line", { method: "POST", json: { line } });
    return true;
  } catch (e) {
    if (e.status !== 401) message(say("cannot_pick", { detail: errorText(e) }), "bad");
    return false;
  }
}

export async function pickLine(n) {
  if (!shown) return;
  if (!shown.lines.some((l) => l.line === n)) {
    message(say("no_line", { code: shown.code, line: n }), "bad");
    return;
  }
  if (!(await sendLine(n))) return;
  shown = { ...shown, chosen: n, awaiting: false };
  render();
  message(say("picked", { code: shown.code, line: n }), "ok");
}

export async function goOnWithout() {
  if (!(await sendLine(null))) return;
  shown = shown && { ...shown, awaiting: false, chosen: shown.chosen ?? 0 };
  render();
  message(say("without"));
}

// Each station status: a captured item whose RMA holds several lines waits for the operator's pick.
export function applyReturnStatus(s) {
  const wait = s.awaiting_line;
  if (wait && wait.capture_id !== awaitingId) {
    awaitingId = wait.capture_id;
    lookUp(wait.rma, null, true);
  } else if (!wait && awaitingId !== null) {
    awaitingId = null;
    if (shown && shown.awaiting) {
      shown = { ...shown, awaiting: false, chosen: shown.chosen ?? 0 };
      render();
    }
  }
}

// With the result: which return line the item was, or why it was inspected without one.
export function renderReturn(insp) {
  const box = $("return-info");
  const r = insp.return;
  const item = insp.item || {};
  if (!r || !r.status || r.status === "none") {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.className = `return-info ${r.status === "matched" ? "ok" : "warn"}`;
  const params = { rma: r.rma || item.lpn || "", line: r.line, lines: r.lines };
  const head = r.status === "unknown" ? say("unknown", { code: params.rma }) : say(r.status, params);
  const parts = [el("strong", {}, head)];
  if (r.status === "matched") {
    const asSent = (v) => v && el("span", { translate: "no" }, v); // the SKU and the WMS's reason, as they come
    const facts = [asSent(item.sku), money(item.price), asSent(item.return_reason), item.days_since_sale != null ? say("days", { n: number(item.days_since_sale) }) : null];
    parts.push(el("span", { class: "return-facts" }, ...facts.filter(Boolean).flatMap((f) => [" · ", f])));
  } else if (r.message) {
    parts.push(el("span", { class: "muted" }, ` (${r.message})`));
  }
  box.replaceChildren(...parts);
  if (shown && shown.code === r.rma && !choosingLine()) {
    shown = null; // the expected return is on the result now
    render();
  }
}

onLanguage(render);
