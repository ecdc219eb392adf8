// The history list: recent inspections, a search by RMA, more on request; a row opens its inspection.

import { api, needsKey } from "./api.js";
import { $, el } from "./dom.js";
import { onLanguage, t, term, time } from "./i18n.js";

let cursor = null;
let rma = "";
let open = () => {};

function row(insp) {
  const item = insp.item || {};
  const final = insp.final || {};
  const decisions = insp.decisions || [];
  const last = decisions[decisions.length - 1];
  const mark = t(!final.decided ? "history.pending" : last && last.action === "override" ? "history.overridden" : "history.accepted");
  const when = time(insp.created_at);
  const button = el(
    "button",
    { type: "button", dataset: { id: insp.id } },
    el("span", {}, when),
    el("span", {}, item.rma || item.lpn || "—"),
    el("span", { class: "g" }, term("grade", final.grade || (insp.grade && insp.grade.level))),
    el("span", {}, term("path", final.disposition || (insp.disposition && insp.disposition.path))),
    el("span", { class: "muted" }, mark),
  );
  button.addEventListener("click", () => open(insp.id));
  return el("li", {}, button);
}

export async function reloadHistory(reset) {
  if (needsKey()) return;
  const params = new URLSearchParams({ limit: "20" });
  if (rma) params.set("rma", rma);
  if (!reset && cursor) params.set("cursor", cursor);
  let page;
  try {
    page = await api(`/v1/inspections?${params}`);
  } catch (e) {
    return;
  }
  const items = Array.isArray(page) ? page : page.items || [];
  cursor = page.next_cursor || null;
  const rows = items.map(row);
  const list = $("history-list");
  if (reset) list.replaceChildren(...rows);
  else list.append(...rows);
  if (reset && !rows.length) list.replaceChildren(el("li", { class: "muted" }, rma ? t("history.none_for", { rma }) : t("history.empty")));
  $("history-more").hidden = !cursor;
}

export const firstRow = () => document.querySelector("#history-list button");

export function moveInHistory(target, step) {
  const buttons = [...document.querySelectorAll("#history-list button")];
  const i = buttons.indexOf(target);
  const next = buttons[i + step];
  if (next) next.focus();
  else if (step < 0) $("history-rma").focus();
}

// ``openInspection(id)`` shows a row's inspection in the result panel.
export function initHistory(openInspection) {
  open = openInspection;
  $("history-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    rma = $("history-rma").value.trim().toUpperCase();
    reloadHistory(true).then(() => {
      const first = firstRow();
      if (first) first.focus();
    });
  });
  $("history-more").addEventListener("click", () => reloadHistory(false));
  onLanguage(() => reloadHistory(true));
}
