// Small DOM and text helpers shared by every part of the page.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const pretty = (s) => String(s || "").replace(/_/g, " ");
export { money } from "./i18n.js"; // amounts in the page's locale and the policy's currency

// The one-line answer to the operator's last key, under the result.
export function message(text, kind) {
  const box = $("action-msg");
  box.textContent = text;
  box.className = `action-msg ${kind || ""}`;
}
