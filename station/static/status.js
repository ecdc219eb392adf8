// The station's state on the page: the status pills, the banners (camera, model, shift check, drift), and the
// long poll of /station/status that also announces each finished inspection.

import { api, hasKey, keyHeaders, needsKey } from "./api.js";
import { $, el, sleep } from "./dom.js";
import { day, fromStatus, known, number, onLanguage, percent, t, term } from "./i18n.js";
import { probe } from "./probe.js";
import { offer } from "./result.js";
import { applyReturnStatus } from "./returns.js";

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

// A start-of-shift warning by its code (its English message when the code is new here).
function shiftText(w) {
  const v = w.value;
  const say = {
    dark: () => t("shift.dark", { value: number(v) }),
    bright: () => t("shift.bright", { value: number(v) }),
    brightness_changed: () => t(v >= 0 ? "shift.brighter" : "shift.darker", { change: percent(Math.abs(v)) }),
    blurred: () => t("shift.blurred", { value: percent(v) }),
    colour_cast: () => t("shift.colour_cast"),
    view_changed: () => t("shift.view_changed"),
    camera_moved: () => t("shift.camera_moved", { value: number(v) }),
  }[w.code];
  return say ? say() : w.message;
}

// A drift warning by its metric; the key is a grade letter, a disposition or a defect class.
function driftText(w) {
  const key = w.metric === "disposition_share" ? term("path", w.key) : w.metric === "mean_confidence" ? term("defect", w.key) : w.key;
  const figures = { key, value: number(w.value, 2), baseline: number(w.baseline, 2), threshold: number(w.threshold, 2) };
  return known(`drift.${w.metric}`) ? t(`drift.${w.metric}`, figures) : w.text;
}

function storageText(st) {
  if (st.read_only) return t("banner.storage_read_only");
  return t("banner.storage_full", { free: number(st.free_mb), min: number(st.min_free_mb) });
}

function modelReady(s) {
  return s.model_ready === null || s.model_ready === undefined ? readyFromApi : s.model_ready;
}

function renderBanners() {
  const box = $("banners");
  const s = status;
  const out = [];
  if (offline) out.push(banner("bad", t("banner.offline")));
  if (s) {
    if (s.running === false) out.push(banner("warn", t(s.state === "off" ? "banner.station_off" : s.state === "starting" ? "banner.station_starting" : "banner.not_running")));
    for (const c of s.cameras || []) {
      if (!c.healthy) {
        let text = t("banner.camera", { camera: c.camera_id, source: c.source, state: term("camera_state", c.state) });
        if (c.retry_in_s) text += t("banner.camera_retry", { seconds: number(Math.ceil(c.retry_in_s)) });
        if (c.error) text += ` (${c.error})`;
        out.push(banner("bad", text));
      }
    }
    if (modelReady(s) === false) out.push(banner("bad", t("banner.model")));
    if (s.storage && s.storage.ok === false) out.push(banner("bad", storageText(s.storage)));
    if (s.inspections_enabled === false) out.push(banner("warn", t("banner.inspections_off")));
    const shift = s.shift_check || {};
    for (const cam of shift.cameras || []) {
      if (!cam.has_reference) out.push(banner("warn", t("banner.no_reference", { camera: cam.camera_id })));
    }
    for (const w of shift.warnings || []) {
      out.push(banner("warn", t("banner.shift", { camera: w.camera_id, warning: shiftText(w) })));
    }
    if (s.last_error) out.push(banner("bad", t("banner.last_error", { error: s.last_error })));
  }
  for (const w of (drift && drift.warnings) || []) {
    const b = banner("warn", t("banner.drift", { day: day(drift.day), warning: driftText(w) }));
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
  fromStatus(s);
  $("station-id").textContent = s.station_id || "";
  const cams = s.cameras || [];
  const healthy = cams.filter((c) => c.healthy);
  if (!cams.length) pill("pill-camera", t("pill.camera_off"), "bad");
  else if (healthy.length === cams.length) {
    const fps = healthy.map((c) => c.fps).reduce((a, b) => Math.min(a, b), Infinity);
    pill("pill-camera", cams.length > 1 ? t("pill.cameras_ok", { n: cams.length }) : t("pill.camera_ok"), "ok");
    $("live-fps").textContent = t("live.fps", { fps: number(fps) });
  } else pill("pill-camera", t("pill.camera_state", { state: term("camera_state", cams.find((c) => !c.healthy).state) }), "bad");
  if ((s.model_ready === null || s.model_ready === undefined) && Date.now() - readyCheckedAt > 10000) checkReady();
  const ready = modelReady(s);
  pill("pill-model", t(ready === false ? "pill.model_not_ready" : ready ? "pill.model_ready" : "pill.model_unknown"), ready === false ? "bad" : ready ? "ok" : "");
  const trig = (s.trigger && s.trigger.state) || "…";
  pill("pill-trigger", s.busy ? t("pill.inspecting") : term("trigger", trig), s.busy ? "warn" : "");
  document.body.dataset.trigger = trig;

  const item = s.item || {};
  const pending = [item.rma, item.lpn].filter(Boolean).join(" / ");
  $("item-pending").textContent = pending ? t("item.pending", { code: pending }) : "";
  const reads = ((s.labels && s.labels.last) || []).filter((r) => r.kind !== "other");
  $("labels-read").textContent = reads.length ? t("item.read", { codes: reads.map((r) => r.value).join(", ") }) : "";

  applyReturnStatus(s);
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

// The pills and banners again in another language.
onLanguage(() => {
  if (status) applyStatus(status);
  else renderBanners();
});

export function watchDrift() {
  loadDrift();
  setInterval(loadDrift, DRIFT_EVERY_MS);
}
