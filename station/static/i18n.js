// The page's words in the operator's language: one message catalogue per language (i18n/<lang>.json, the same keys
// in each), the choice (the station's language until the operator picks one here; kept in localStorage), and
// numbers, money and times in the language's locale.

const LOCALES = { en: "en-GB", vi: "vi-VN" };
const STORE = "inspector.language";

let lang = "en";
let wanted = "en"; // the language being loaded
let messages = {};
let english = {};
let currency = null; // the policy's, from the station status
const listeners = [];

async function catalogue(code) {
  const res = await fetch(`/static/i18n/${code}.json`, { cache: "no-cache" });
  if (!res.ok) throw new Error(`no message catalogue for ${code}`);
  return res.json();
}

export const language = () => lang;
export const languages = () => Object.keys(LOCALES);
export const onLanguage = (fn) => listeners.push(fn);

// The message ``key`` with its {placeholders} filled; a key missing from the language shows in English, then as itself.
export function t(key, params = {}) {
  const text = messages[key] ?? english[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// The same as nodes, the params named in ``keep`` in a <span translate="no">: names and ids that are the same in
// every language (an operator's key name, a code), marked as such.
export function tNodes(key, params = {}, keep = []) {
  const text = messages[key] ?? english[key] ?? key;
  return text.split(/(\{\w+\})/).filter(Boolean).map((part) => {
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (!name || !(name in params)) return document.createTextNode(part);
    if (!keep.includes(name)) return document.createTextNode(String(params[name]));
    const span = document.createElement("span");
    span.translate = false;
    span.textContent = String(params[name]);
    return span;
  });
}

export const known = (key) => key in english;

// A name the server sends (a disposition, a defect, a zone, a state...): its message, or the name as plain words
// (a retailer's own category, a new code) when the catalogues do not know it.
export function term(group, name) {
  if (name === null || name === undefined || name === "") return "";
  const key = `${group}.${name}`;
  return known(key) ? t(key) : String(name).replace(/_/g, " ");
}

// The words of the static page: data-i18n sets the text, data-i18n-<attribute> an attribute.
function translatePage() {
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attr of ["placeholder", "title", "aria-label", "alt"]) {
    for (const node of document.querySelectorAll(`[data-i18n-${attr}]`)) {
      node.setAttribute(attr, t(node.getAttribute(`data-i18n-${attr}`)));
    }
  }
  document.title = t("page.title");
  const picker = document.getElementById("language");
  if (picker) picker.value = lang;
}

export async function setLanguage(code, remember = false) {
  const next = code in LOCALES ? code : "en";
  wanted = next;
  if (!Object.keys(english).length) english = await catalogue("en");
  const words = next === "en" ? english : await catalogue(next);
  if (wanted !== next) return; // another language was asked for meanwhile
  messages = words;
  lang = next;
  if (remember) localStorage.setItem(STORE, next);
  document.documentElement.lang = next;
  translatePage();
  for (const fn of listeners) fn();
}

// The operator's choice on this browser, else the station's (the page shell comes in the station's language).
export const initLanguage = () => setLanguage(localStorage.getItem(STORE) || document.documentElement.lang);

// From each status: the station's language (unless the operator chose one here) and the policy's currency.
export function fromStatus(s) {
  const chosen = localStorage.getItem(STORE);
  const cur = s.currency || null;
  const changed = cur !== currency;
  currency = cur;
  if (!chosen && s.language && s.language !== wanted) setLanguage(s.language);
  else if (changed) for (const fn of listeners) fn();
}

export function nextLanguage() {
  const all = languages();
  return setLanguage(all[(all.indexOf(wanted) + 1) % all.length], true);
}

const locale = () => LOCALES[lang];
const finite = (v) => typeof v === "number" && Number.isFinite(v);

export function number(v, digits = 0) {
  if (!finite(v)) return "–";
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

export function percent(v, digits = 0) {
  if (!finite(v)) return "–";
  return new Intl.NumberFormat(locale(), {
    style: "percent",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(v);
}

// An amount in the policy's currency (a reason may name its own); a plain number until the currency is known.
export function money(v, cur = currency) {
  if (!finite(v)) return "–";
  if (cur) {
    try {
      return new Intl.NumberFormat(locale(), { style: "currency", currency: cur }).format(v);
    } catch (_) {
      /* not an ISO 4217 code: the number and the code */
      return `${number(v, 2)} ${cur}`;
    }
  }
  return number(v, 2);
}

export function time(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), { timeStyle: "medium" }).format(new Date(iso));
}

export function day(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeZone: "UTC" }).format(new Date(iso));
}

// "a, b and c" in the language.
export function list(items) {
  return new Intl.ListFormat(locale(), { type: "conjunction" }).format(items.map(String));
}

// The visible language control (T does the same from the keyboard, see keys.js).
export function initLanguagePicker() {
  const picker = document.getElementById("language");
  picker.value = lang;
  picker.addEventListener("change", () => {
    setLanguage(picker.value, true);
    picker.blur();
  });
}
