// The live view: the bench camera as an MJPEG stream, reconnected when it drops.

import { api } from "./api.js";
import { $ } from "./dom.js";

let reconnect = null;

export function startLive() {
  const img = $("live");
  let retry = null;
  const connect = () => {
    img.src = `/station/stream.mjpg?t=${Date.now()}`;
  };
  img.addEventListener("error", () => {
    clearTimeout(retry);
    retry = setTimeout(connect, 2000);
  });
  reconnect = () => {
    clearTimeout(retry);
    connect();
  };
  connect();
}

// The live view is an <img>, which cannot send X-API-Key: the checked key becomes an HttpOnly cookie.
export async function openLiveSession() {
  try {
    await api("/station/session", { method: "POST" });
  } catch (_) {
    return;
  }
  if (reconnect) reconnect();
}
