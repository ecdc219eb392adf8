// The disposition label of the shown inspection: once it is decided, whether its label printed, from the
// station's print queue (GET /v1/labels). P prints it again. Nothing shows when the station has no printer.
// Its words are the catalogues' label.* messages.

import { api } from "./api.js";
import { $, el, message } from "./dom.js";
import { errorText } from "./explain.js";
import { onLanguage, t } from "./i18n.js";
import { current, onChange, onShow } from "./result.js";

// A job's state on the page (a pending job whose last attempt failed is "retrying") -> its message.
const WORDS = { pending: "label.queued", retrying: "label.retrying", printed: "label.printed", failed: "label.failed" };
const FIRST_MS = 300;
const SLOWEST_MS = 5000;

let timer = null;
let watching = null; // the inspection whose label is followed
let job = null; // its newest print job, as last read

function render() {
  const box = $("label-status");
  if (!box) return;
  if (!job) {
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.status;
    return;
  }
  const status = job.status === "pending" && job.last_error ? "retrying" : job.status;
  const lines = [el("div", {}, t(WORDS[status] || "label.queued"))];
  if (status !== "printed" && job.last_error) lines.push(el("div", { class: "muted" }, job.last_error));
  box.replaceChildren(...lines);
  box.dataset.status = status;
  box.hidden = false;
}

function stop() {
  clearTimeout(timer);
  timer = null;
}

// Read the newest job of ``id`` and show it; keep reading while it is pending (the worker retries a printer
// that is down), less often the longer it takes.
async function follow(id, delay) {
  stop();
  if (watching !== id) return;
  let next = Math.min(delay * 2, SLOWEST_MS);
  try {
    const page = await api(`/v1/labels?inspection_id=${encodeURIComponent(id)}&limit=1`);
    if (watching !== id) return;
    job = page.items[0] || null;
    render();
    if (!job || job.status !== "pending") return;
  } catch (e) {
    next = SLOWEST_MS; // the server is busy or gone: the status pills say so; look again later
  }
  timer = setTimeout(() => follow(id, next), delay);
}

export async function reprint() {
  const insp = current();
  if (!insp) {
    message(t("label.nothing"), "bad");
    return;
  }
  try {
    job = await api(`/v1/inspections/${encodeURIComponent(insp.id)}/label/print`, { method: "POST" });
  } catch (e) {
    if (e.status === 409) message(t("label.no_printer"), "bad");
    else if (e.status !== 401) message(errorText(e), "bad");
    return;
  }
  message(t("label.reprinting"), "ok");
  watching = insp.id;
  render();
  follow(insp.id, FIRST_MS);
}

export function initLabel() {
  onShow(() => {
    stop();
    watching = null;
    job = null;
    render();
  });
  onChange(() => {
    const insp = current();
    if (!insp || !insp.final || !insp.final.decided) return;
    watching = insp.id;
    follow(insp.id, FIRST_MS);
  });
  onLanguage(render);
}
