// The bench controls: capture now, store the empty bench, and the RMA / LPN for the next item.

import { api } from "./api.js";
import { $, message } from "./dom.js";

export async function capture() {
  try {
    await api("/station/capture", { method: "POST" });
    message("Capturing…");
  } catch (e) {
    if (e.status !== 401) message(`Cannot capture: ${e.message}`, "bad");
  }
}

export async function storeReference() {
  try {
    await api("/station/reference", { method: "POST" });
    message("The empty bench is stored as the reference.", "ok");
  } catch (e) {
    if (e.status !== 401) message(e.message, "bad");
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
      message(code ? `Next item: ${code}` : "Item code cleared.", "ok");
      input.value = "";
      input.blur();
    } catch (e) {
      if (e.status !== 401) message(`Item code refused: ${e.message}`, "bad");
    }
  });
}
