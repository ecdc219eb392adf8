// The bench controls: capture now, store the empty bench, and the RMA / LPN for the next item.

import { api } from "./api.js";
import { $, message } from "./dom.js";
import { errorText } from "./explain.js";
import { t } from "./i18n.js";
import { lookUp } from "./returns.js";

export async function capture() {
  try {
    await api("/station/capture", { method: "POST" });
    message(t("msg.capturing"));
  } catch (e) {
    if (e.status === 409) message(t("msg.no_camera"), "bad");
    else if (e.status !== 401) message(t("msg.cannot_capture", { error: errorText(e) }), "bad");
  }
}

export async function storeReference() {
  try {
    await api("/station/reference", { method: "POST" });
    message(t("msg.reference_stored"), "ok");
  } catch (e) {
    if (e.status === 409) message(t("msg.reference_not_empty"), "bad");
    else if (e.status !== 401) message(t("msg.reference_failed", { error: errorText(e) }), "bad");
  }
}

export function initItemForm() {
  $("item-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("item-code");
    const code = input.value.trim().toUpperCase();
    const body = /^LPN/.test(code) ? { rma: null, lpn: code } : { rma: code || null, lpn: null };
    try {
      await api("/station/item", { method: "POST", json: body });
      message(code ? t("msg.next_item", { code }) : t("msg.item_cleared"), "ok");
      input.value = "";
      input.blur();
      lookUp(body.rma, body.lpn);
    } catch (e) {
      if (e.status !== 401) message(t("msg.item_refused", { error: errorText(e) }), "bad");
    }
  });
}
