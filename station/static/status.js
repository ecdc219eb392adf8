// The station's state on the page: the status pills, the banners (camera, model, shift check, drift), and the
// long poll of /station/status that also announces each finished inspection.

import { api, hasKey, keyHeaders, needsKey } from "./api.js";
import { $, el, pretty, sleep } from "./dom.js";
import { probe } from "./probe.js";
import { offer } from "./result.js";

const DRIFT_EVERY_MS = 10000;

let status = null;
let offline = false;
let drift = null;
let lastSeenId = null;
let readyCheckedAt = 0;
let readyFromApi = null;

function banner(kind, text) {
  return el("div", { class: `banner ${kind}` }, text);
}

function modelReady(s) {
  return s.model_ready === null || s.model_ready === undefined ? readyFromApi : s.model_ready;
}

function renderBanners() {
  const box = $("banners");
  const s = status;
  const out = [];
  if (offline) out.push(banner("bad", "The station server does not answer: retrying…"));
  if (s) {
    if (s.running === false) out.push(banner("warn", s.message || "The station is not running."));
    for (const c of s.cameras || []) {
      if (!c.healthy) {
        let text = `Camera ${c.camera_id} (${c.source}) is not ready: ${pretty(c.state)}`;
        if (c.retry_in_s) text += `, next try in ${Math.ceil(c.retry_in_s)} s`;
        if (c.error) text += ` (${c.error})`;
        out.push(banner("bad", text));
      }
    }
    if (modelReady(s) === false) out.push(banner("bad", "The model is not ready: inspections cannot run until it is loaded."));
    if (s.storage && s.storage.ok === false) out.push(banner("bad", `${s.storage.detail}. Free space or fix the disk: the station resumes by itself.`));
    if (s.inspections_enabled === false) out.push(banner("warn", "Inspections are off on this server: live view only."));
    const shift = s.shift_check || {};
    for (const cam of shift.cameras || []) {
      if (!cam.has_reference) {
        out.push(banner("warn", `No empty-bench reference was stored for ${cam.camera_id}: the current view is now its reference (B stores it again).`));
      }
    }
    for (const w of shift.warnings || []) {
      out.push(banner("warn", `Start-of-shift check, ${w.camera_id}: ${w.message}`));
    }
    if (s.last_error) out.push(banner("bad", s.last_error));
  }
  for (const w of (drift && drift.warnings) || []) {
    const b = banner("warn", `Drift on ${drift.day}: ${w.text}. Tell the ML engineers.`);
    b.classList.add("drift");
    out.push(b);
  }
  box.replaceChildren(...out);
}

function pill(id, text, kind) {
  const p = $(id);
  p.textContent = text;
  p.className = `pill ${kind || ""}`;
}

// When the status cannot tell whether the model is loaded (no model_ready), the API's readiness says.
async function checkReady() {
  readyCheckedAt = Date.now();
  try {
    const r = await fetch("/v1/ready", { headers: keyHeaders(), cache: "no-store" });
    if (r.status === 404) readyFromApi = null;
    else {
      const j = await r.json().catch(() => ({}));
      readyFromApi = r.ok && j.ready !== false;
    }
  } catch (_) {
    readyFromApi = null;
  }
}

function applyStatus(s) {
  status = s;
  $("station-id").textContent = s.station_id || "";
  const cams = s.cameras || [];
  const healthy = cams.filter((c) => c.healthy);
  if (!cams.length) pill("pill-camera", "camera off", "bad");
  else if (healthy.length === cams.length) {
    const fps = healthy.map((c) => c.fps).reduce((a, b) => Math.min(a, b), Infinity);
    pill("pill-camera", cams.length > 1 ? `${cams.length} cameras ok` : "camera ok", "ok");
    $("live-fps").textContent = `${fps.toFixed(0)} fps`;
  } else pill("pill-camera", `camera ${cams.find((c) => !c.healthy).state}`, "bad");
  if ((s.model_ready === null || s.model_ready === undefined) && Date.now() - readyCheckedAt > 10000) checkReady();
  const ready = modelReady(s);
  pill("pill-model", ready === false ? "model not ready" : ready ? "model ready" : "model ?", ready === false ? "bad" : ready ? "ok" : "");
  const trig = (s.trigger && s.trigger.state) || "…";
  pill("pill-trigger", s.busy ? "inspecting…" : pretty(trig).toLowerCase(), s.busy ? "warn" : "");
  document.body.dataset.trigger = trig;

  const item = s.item || {};
  const pending = [item.rma, item.lpn].filter(Boolean).join(" / ");
  $("item-pending").textContent = pending ? `next item: ${pending}` : "";
  const reads = ((s.labels && s.labels.last) || []).filter((r) => r.kind !== "other");
  $("labels-read").textContent = reads.length ? `read from the label: ${reads.map((r) => r.value).join(", ")}` : "";

  const last = s.last_inspection;
  if (last && last.inspection_id && last.inspection_id !== lastSeenId) {
    if (lastSeenId === null) probe.initialId = last.inspection_id; // finished before the page opened
    lastSeenId = last.inspection_id;
    offer(last.inspection_id);
  }
  renderBanners();
}

export async function pollStatus() {
  let version = null;
  for (;;) {
    if (needsKey()) {
      await sleep(300);
      continue;
    }
    try {
      const q = version === null ? "" : `?after=${version}&wait=20`;
      const s = await api(`/station/status${q}`);
      offline = false;
      applyStatus(s);
      if (s.running === false) {
        version = null;
        await sleep(1000);
      } else {
        if (s.version === version) await sleep(250); // woken without a change (the server is stopping)
        version = s.version;
      }
    } catch (e) {
      version = null;
      if (e.status === 401) continue;
      offline = e.status === 0;
      renderBanners();
      await sleep(1000);
    }
  }
}

export async function loadDrift() {
  if (needsKey() || !hasKey()) return;
  try {
    drift = await api("/v1/feedback/drift");
  } catch (e) {
    return;
  }
  renderBanners();
}

export function watchDrift() {
  loadDrift();
  setInterval(loadDrift, DRIFT_EVERY_MS);
}
