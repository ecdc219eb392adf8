// The page's requests: fetch with the operator key, and the prompt that asks for the key (Ctrl+K, or a refused one).

import { $ } from "./dom.js";
import { errorText } from "./explain.js";
import { t } from "./i18n.js";

const KEY_STORE = "inspector.operatorKey";

let key = sessionStorage.getItem(KEY_STORE) || "";
let needKey = false;
const keyListeners = [];

// ``code``: the problem's stable code, which the page says in its language (explain.js); ``message``: its detail.
class ApiError extends Error {
  constructor(status, detail, code = null) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

export const hasKey = () => Boolean(key);
export const needsKey = () => needKey;
export const keyHeaders = () => (key ? { "X-API-Key": key } : {});

export async function api(path, opts = {}) {
  const headers = keyHeaders();
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  let res;
  try {
    res = await fetch(path, { method: opts.method || "GET", headers, body, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "the station server does not answer");
  }
  if (res.status === 401) {
    askKey(t("key.refused"));
    throw new ApiError(401, "key refused");
  }
  if (!res.ok) {
    let detail = res.statusText;
    let code = null;
    try {
      const j = await res.json();
      detail = j.detail || j.title || detail;
      code = j.code || null;
      if (typeof detail !== "string") detail = JSON.stringify(detail);
    } catch (_) {
      /* not JSON */
    }
    throw new ApiError(res.status, detail, code);
  }
  if (opts.blob) return res.blob();
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export function askKey(text) {
  const dialog = $("key-dialog");
  needKey = true;
  $("key-error").textContent = text || "";
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

// What to do once a key is accepted (open the live view, load the lists that need it).
export function onKeyAccepted(fn) {
  keyListeners.push(fn);
}

export function initKeyPrompt() {
  $("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const typed = $("key-input").value.trim();
    if (!typed) return;
    key = typed;
    try {
      await api("/station/status");
    } catch (e) {
      if (e.status !== 401) $("key-error").textContent = errorText(e);
      return;
    }
    sessionStorage.setItem(KEY_STORE, typed);
    $("key-input").value = "";
    needKey = false;
    $("key-dialog").close();
    for (const fn of keyListeners) fn();
  });
  $("key-dialog").addEventListener("cancel", (ev) => {
    if (!key) ev.preventDefault(); // nothing works without a key
  });
  $("key-dialog").addEventListener("close", () => {
    if (key) needKey = false; // Ctrl+K then Esc: the key in use stays, and so does the page's polling
  });
}
