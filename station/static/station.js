// The operator page: live view, last inspection, accept / override, history.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere.
// Everything works from the keyboard; see the key list in the footer.
"use strict";

(() => {
  const KEY_STORE = "inspector.operatorKey";
  const GRADES = ["A", "B", "C", "D"];
  const REASONS = [
    ["missed_damage", "damage the camera missed"],
    ["no_damage", "the marked damage is not there"],
    ["wrong_item", "wrong or different item"],
    ["missing_parts", "parts or accessories missing"],
    ["not_functional", "fails the function test"],
    ["packaging", "packaging opened or damaged"],
    ["hygiene_safety", "hygiene or safety"],
    ["policy_exception", "customer or vendor agreement"],
    ["other", "other"],
  ];
  // The defect classes an operator can name for a missed defect (the labelmap without "item").
  const DEFECTS = ["scratch", "dent", "crack", "stain", "tear", "missing_part", "broken_seal"];
  const DRIFT_EVERY_MS = 10000;
  // One colour per class id, as on the server-drawn live view (RGB here).
  const PALETTE = ["#c8c8c8", "#ffd700", "#1e90ff", "#dc143c", "#808000", "#ff69b4", "#32cd32", "#ff4500"];

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const pretty = (s) => String(s || "").replace(/_/g, " ");
  const money = (v) => (typeof v === "number" ? v.toFixed(2) : "–");

  const state = {
    key: sessionStorage.getItem(KEY_STORE) || "",
    needKey: false,
    offline: false,
    status: null,
    shown: null,
    lastSeenId: null,
    pendingId: null,
    shownLocalAt: 0,
    lastErrorCapture: null,
    override: null,
    flag: null,
    drift: null,
    historyCursor: null,
    historyRma: "",
    readyCheckedAt: 0,
    readyFromApi: null,
  };
  // Read by the browser tests: when each inspection became visible, and the decisions sent.
  const probe = { shownAt: {}, decisions: [], flags: [], initialId: null };
  window.__station = probe;

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path, opts = {}) {
    const headers = {};
    if (state.key) headers["X-API-Key"] = state.key;
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
      askKey("The key was refused: enter an operator key.");
      throw new ApiError(401, "key refused");
    }
    if (!res.ok) {
      let detail = res.statusText;
      try {
        const j = await res.json();
        detail = j.detail || j.title || detail;
        if (typeof detail !== "string") detail = JSON.stringify(detail);
      } catch (_) {
        /* not JSON */
      }
      throw new ApiError(res.status, detail);
    }
    if (opts.blob) return res.blob();
    const type = res.headers.get("content-type") || "";
    return type.includes("json") ? res.json() : res.text();
  }

  // ------------------------------------------------------------------ the key

  function askKey(message) {
    const dialog = $("key-dialog");
    state.needKey = true;
    $("key-error").textContent = message || "";
    if (!dialog.open) dialog.showModal();
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    state.key = key;
    try {
      await api("/station/status");
    } catch (e) {
      if (e.status !== 401) $("key-error").textContent = e.message;
      return;
    }
    sessionStorage.setItem(KEY_STORE, key);
    $("key-input").value = "";
    state.needKey = false;
    $("key-dialog").close();
    openLiveSession();
    loadHistory(true);
    loadDrift();
  });
  $("key-dialog").addEventListener("cancel", (ev) => {
    if (!state.key) ev.preventDefault(); // nothing works without a key
  });

  // ------------------------------------------------------------------ status and banners

  function banner(kind, text) {
    return el("div", { class: `banner ${kind}` }, text);
  }

  function renderBanners() {
    const box = $("banners");
    const s = state.status;
    const out = [];
    if (state.offline) out.push(banner("bad", "The station server does not answer: retrying…"));
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
      const ready = s.model_ready === null || s.model_ready === undefined ? state.readyFromApi : s.model_ready;
      if (ready === false) out.push(banner("bad", "The model is not ready: inspections cannot run until it is loaded."));
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
    for (const w of (state.drift && state.drift.warnings) || []) {
      const b = banner("warn", `Drift on ${state.drift.day}: ${w.text}. Tell the ML engineers.`);
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

  async function checkReady() {
    state.readyCheckedAt = Date.now();
    try {
      const r = await fetch("/v1/ready", { headers: state.key ? { "X-API-Key": state.key } : {}, cache: "no-store" });
      if (r.status === 404) state.readyFromApi = null;
      else {
        const j = await r.json().catch(() => ({}));
        state.readyFromApi = r.ok && j.ready !== false;
      }
    } catch (_) {
      state.readyFromApi = null;
    }
  }

  function applyStatus(s) {
    state.status = s;
    $("station-id").textContent = s.station_id || "";
    const cams = s.cameras || [];
    const healthy = cams.filter((c) => c.healthy);
    if (!cams.length) pill("pill-camera", "camera off", "bad");
    else if (healthy.length === cams.length) {
      const fps = healthy.map((c) => c.fps).reduce((a, b) => Math.min(a, b), Infinity);
      pill("pill-camera", cams.length > 1 ? `${cams.length} cameras ok` : "camera ok", "ok");
      $("live-fps").textContent = `${fps.toFixed(0)} fps`;
    } else pill("pill-camera", `camera ${cams.find((c) => !c.healthy).state}`, "bad");
    if ((s.model_ready === null || s.model_ready === undefined) && Date.now() - state.readyCheckedAt > 10000) checkReady();
    const ready = s.model_ready === null || s.model_ready === undefined ? state.readyFromApi : s.model_ready;
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
    if (last && last.inspection_id && last.inspection_id !== state.lastSeenId) {
      if (state.lastSeenId === null) probe.initialId = last.inspection_id; // finished before the page opened
      state.lastSeenId = last.inspection_id;
      // Never swap the result under an override or a flag being keyed in: show the new one when it is done.
      if (state.override || state.flag) state.pendingId = last.inspection_id;
      else loadInspection(last.inspection_id).then(() => loadHistory(true));
    }
    renderBanners();
  }

  async function pollLoop() {
    let version = null;
    for (;;) {
      if (state.needKey) {
        await sleep(300);
        continue;
      }
      try {
        const q = version === null ? "" : `?after=${version}&wait=20`;
        const s = await api(`/station/status${q}`);
        state.offline = false;
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
        state.offline = e.status === 0;
        renderBanners();
        await sleep(1000);
      }
    }
  }

  // ------------------------------------------------------------------ live view

  function startLive() {
    const img = $("live");
    let retry = null;
    const connect = () => {
      img.src = `/station/stream.mjpg?t=${Date.now()}`;
    };
    img.addEventListener("error", () => {
      clearTimeout(retry);
      retry = setTimeout(connect, 2000);
    });
    state.reconnectLive = () => {
      clearTimeout(retry);
      connect();
    };
    connect();
  }

  // The live view is an <img>, which cannot send X-API-Key: the checked key becomes an HttpOnly cookie.
  async function openLiveSession() {
    try {
      await api("/station/session", { method: "POST" });
    } catch (_) {
      return;
    }
    if (state.reconnectLive) state.reconnectLive();
  }

  // ------------------------------------------------------------------ one inspection

  async function loadInspection(id) {
    let insp;
    try {
      insp = await api(`/v1/inspections/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e.status !== 401) message(`Cannot load inspection ${id}: ${e.message}`, "bad");
      return;
    }
    cancelOverride();
    cancelFlag(true, false);
    state.shown = insp;
    state.shownLocalAt = performance.now();
    renderInspection(insp);
    if (!(insp.id in probe.shownAt)) probe.shownAt[insp.id] = Date.now();
    document.body.dataset.shownId = insp.id;
    drawViews(insp);
  }

  function renderInspection(insp) {
    $("result-empty").hidden = true;
    $("result").hidden = false;
    const g = insp.grade || {};
    const d = insp.disposition || {};
    const item = insp.item || {};
    const gradeEl = $("grade");
    gradeEl.textContent = g.level === "WRONG_ITEM" ? "WRONG ITEM" : g.level || "?";
    gradeEl.className = `grade g-${g.level}`;
    const probs = Object.entries(g.probabilities || {})
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
      .join(" · ");
    $("grade-conf").textContent = probs;
    $("disposition").textContent = pretty(d.path);
    $("disp-value").textContent = `expected ${money(d.expected_value)}${d.rule ? ` · rule ${d.rule}` : ""}`;

    const when = insp.created_at ? new Date(insp.created_at).toLocaleTimeString() : "";
    const code = [item.rma, item.lpn].filter(Boolean).join(" / ") || "no RMA";
    $("insp-meta").textContent = `${when} · ${code} · ${String(insp.id).slice(0, 12)}`;

    const reasons = [...(g.reasons || []), ...(d.reasons || [])];
    $("reasons").replaceChildren(...(reasons.length ? reasons.map((r) => el("li", {}, r.text)) : [el("li", {}, "no reasons given")]));

    const alts = [...(d.alternatives || [])].sort((a, b) => b.expected_value - a.expected_value);
    $("alternatives").tBodies[0].replaceChildren(
      ...alts.map((a) =>
        el(
          "tr",
          { class: a.path === d.path ? "chosen" : a.allowed === false ? "blocked" : "" },
          el("td", {}, pretty(a.path)),
          el("td", { class: "num" }, money(a.expected_value)),
          el("td", {}, a.note || (a.allowed === false ? "not allowed" : "")),
        ),
      ),
    );
    renderDecision(insp);
    renderOverrideOptions();
  }

  function renderDecision(insp) {
    const box = $("decision");
    const final = insp.final || {};
    const decisions = insp.decisions || [];
    const last = decisions[decisions.length - 1];
    if (!final.decided || !last) {
      box.textContent = "pending: Enter accepts";
      box.className = "decision";
      return;
    }
    if (last.action === "accept") {
      box.textContent = `accepted by ${last.actor}`;
      box.className = "decision accepted";
    } else {
      box.textContent = `overridden to ${final.grade} · ${pretty(final.disposition)} (${pretty(last.reason_code)}) by ${last.actor}`;
      box.className = "decision overridden";
    }
  }

  async function drawViews(insp) {
    const box = $("views");
    const views = insp.views || [];
    const canvases = views.map((v) => el("canvas", { width: v.width || 640, height: v.height || 480, "aria-label": `view ${v.n} with detections` }));
    box.replaceChildren(...canvases);
    await Promise.all(
      views.map(async (v, i) => {
        const url = v.image_url || `/v1/inspections/${encodeURIComponent(insp.id)}/images/${v.n ?? i}`;
        let bitmap;
        try {
          bitmap = await createImageBitmap(await api(url, { blob: true }));
        } catch (e) {
          return;
        }
        if (state.shown !== insp) return;
        const canvas = canvases[i];
        const scale = Math.min(1, (views.length > 1 ? 320 : 560) / bitmap.width);
        canvas.width = Math.round(bitmap.width * scale);
        canvas.height = Math.round(bitmap.height * scale);
        const ctx = canvas.getContext("2d");
        ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        drawBoxes(ctx, v.detections || [], scale);
        canvas.dataset.scale = String(scale);
        canvas.dataset.view = String(v.n ?? i);
        canvas.__bitmap = bitmap;
        canvas.__detections = v.detections || [];
        enableDrawing(canvas);
      }),
    );
  }

  function drawBoxes(ctx, dets, scale) {
    ctx.font = "bold 13px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    for (const det of dets) {
      const [x1, y1, x2, y2] = det.xyxy.map((v) => v * scale);
      const colour = PALETTE[det.class_id % PALETTE.length];
      const isItem = det.class_name === "item";
      ctx.lineWidth = isItem ? 1 : 2.5;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = `${det.class_name} ${det.confidence.toFixed(2)}`;
      const w = ctx.measureText(label).width + 6;
      const ty = y1 - 16 >= 0 ? y1 : y2 + 16;
      ctx.fillStyle = colour;
      ctx.fillRect(x1, ty - 16, w, 16);
      ctx.fillStyle = "#000";
      ctx.fillText(label, x1 + 3, ty - 1);
    }
  }

  // ------------------------------------------------------------------ decisions

  function message(text, kind) {
    const box = $("action-msg");
    box.textContent = text;
    box.className = `action-msg ${kind || ""}`;
  }

  async function decide(body) {
    const insp = state.shown;
    if (!insp) {
      message("Nothing to decide yet.", "bad");
      return;
    }
    try {
      await api(`/v1/inspections/${encodeURIComponent(insp.id)}/decision`, { method: "POST", json: body });
    } catch (e) {
      if (e.status !== 401) message(`Not saved: ${e.message}`, "bad");
      return;
    }
    probe.decisions.push({ id: insp.id, ...body });
    const fresh = await api(`/v1/inspections/${encodeURIComponent(insp.id)}`).catch(() => null);
    if (fresh && state.shown && state.shown.id === insp.id) {
      state.shown = fresh;
      renderDecision(fresh);
      renderOverrideOptions();
    }
    message(body.action === "accept" ? "Accepted." : `Overridden (${pretty(body.reason_code)}).`, "ok");
    loadHistory(true);
  }

  // A key pressed just as a new result lands was meant for the previous one: ask again.
  const SETTLE_MS = 400;
  function justArrived() {
    if (performance.now() - state.shownLocalAt >= SETTLE_MS) return false;
    message("A new result just arrived: check it, then press the key again.", "bad");
    return true;
  }

  function showPending() {
    const id = state.pendingId;
    state.pendingId = null;
    if (id && (!state.shown || state.shown.id !== id)) loadInspection(id).then(() => loadHistory(true));
  }

  function accept() {
    if (justArrived()) return;
    const insp = state.shown;
    if (insp && insp.final && insp.final.decided) {
      message("Already decided: press 1–9 to override.", "bad");
      return;
    }
    decide({ action: "accept" });
  }

  function overrideOptions(insp) {
    if (!insp) return [];
    const g = insp.grade || {};
    const d = insp.disposition || {};
    const options = GRADES.filter((x) => x !== g.level).map((x) => ({ kind: "grade", value: x, label: `grade ${x}` }));
    const alts = [...(d.alternatives || [])]
      .filter((a) => a.path !== d.path)
      .sort((a, b) => (b.allowed !== false) - (a.allowed !== false) || b.expected_value - a.expected_value);
    for (const a of alts) {
      if (options.length >= 9) break;
      options.push({ kind: "disposition", value: a.path, label: `${pretty(a.path)} (${money(a.expected_value)})` });
    }
    return options.slice(0, 9);
  }

  function renderOverrideOptions() {
    const panel = $("override");
    const list = $("override-options");
    const insp = state.shown;
    if (!insp) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    if (state.override) {
      const choice = state.override.choice;
      $("override-title").textContent = `Reason for ${choice.label}: pick with 1–9, Esc to cancel`;
      list.replaceChildren(...REASONS.map(([code, text], i) => el("li", { dataset: { code } }, el("kbd", {}, i + 1), ` ${text}`)));
    } else {
      $("override-title").textContent = "Override: pick with 1–9";
      list.replaceChildren(...overrideOptions(insp).map((o, i) => el("li", {}, el("kbd", {}, i + 1), ` ${o.label}`)));
    }
  }

  function startOverride(n) {
    if (justArrived()) return;
    const options = overrideOptions(state.shown);
    const choice = options[n - 1];
    if (!choice) {
      message(state.shown ? `No override ${n}.` : "Nothing to override yet.", "bad");
      return;
    }
    state.override = { choice };
    renderOverrideOptions();
    message(`Override to ${choice.label}: now pick the reason (1–9).`);
  }

  function pickReason(n) {
    const reason = REASONS[n - 1];
    const choice = state.override && state.override.choice;
    if (!reason || !choice) return;
    state.override = null;
    renderOverrideOptions();
    decide({ action: "override", [choice.kind]: choice.value, reason_code: reason[0] }).then(showPending);
  }

  function cancelOverride() {
    state.override = null;
    if (state.shown) renderOverrideOptions();
  }

  // ------------------------------------------------------------------ flags: missed and false defects

  // M: a defect the model missed (drag a box on the view if you like, then its class 1-7, or Enter for none).
  // F: a detection that is not a defect (pick it 1-9). Both become label candidates; the decision is untouched.
  function flagTargets(insp) {
    const out = [];
    for (const v of (insp && insp.views) || []) {
      (v.detections || []).forEach((d, i) => out.push({ view: v.n, detection: d.index ?? i, det: d }));
    }
    return out.slice(0, 9);
  }

  function renderFlag() {
    const panel = $("flag");
    const f = state.flag;
    if (!f) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    if (f.kind === "missed_defect") {
      const where = f.box ? `box on view ${f.view} drawn` : "drag a box on the view if you can";
      $("flag-title").textContent = `Missed defect (${where}): its class with 1–${DEFECTS.length}, Enter for unknown, Esc to cancel`;
      $("flag-options").replaceChildren(...DEFECTS.map((c, i) => el("li", { dataset: { cls: c } }, el("kbd", {}, i + 1), ` ${pretty(c)}`)));
    } else {
      $("flag-title").textContent = "False defect: which detection is wrong? 1–9, Esc to cancel";
      $("flag-options").replaceChildren(
        ...flagTargets(state.shown).map((t, i) =>
          el("li", {}, el("kbd", {}, i + 1), ` ${t.det.class_name} ${t.det.confidence.toFixed(2)} (view ${t.view})`),
        ),
      );
    }
  }

  function startFlag(kind) {
    if (justArrived()) return;
    if (!state.shown) {
      message("Nothing to flag yet.", "bad");
      return;
    }
    if (kind === "false_defect" && !flagTargets(state.shown).length) {
      message("No detections to flag as false: use M for a missed defect.", "bad");
      return;
    }
    state.flag = { kind, box: null, view: 0 };
    document.querySelectorAll("#views canvas").forEach((c) => c.classList.toggle("drawing", kind === "missed_defect"));
    renderFlag();
    message(kind === "missed_defect" ? "Missed defect: draw a box (optional), then pick the class." : "False defect: pick the detection.");
  }

  function cancelFlag(quiet, resume = true) {
    const had = state.flag;
    state.flag = null;
    document.querySelectorAll("#views canvas").forEach((c) => c.classList.remove("drawing"));
    renderFlag();
    if (had && had.box && state.shown) drawViews(state.shown); // clear the drawn box
    if (had && !quiet) message("Flag cancelled.");
    if (had && resume) setTimeout(showPending, 0); // a result that arrived meanwhile
  }

  async function sendFlag(body) {
    const insp = state.shown;
    cancelFlag(true);
    if (!insp) return;
    try {
      await api(`/v1/inspections/${encodeURIComponent(insp.id)}/flags`, { method: "POST", json: body });
    } catch (e) {
      if (e.status !== 401) message(`Flag not saved: ${e.message}`, "bad");
      return;
    }
    probe.flags.push({ id: insp.id, ...body });
    const what = body.kind === "missed_defect" ? `missed ${pretty(body.class_name || "defect")}` : "false defect";
    message(`Flagged: ${what}. Thank you, it goes to the next training round.`, "ok");
  }

  function pickFlag(n) {
    const f = state.flag;
    if (!f) return;
    if (f.kind === "missed_defect") {
      const cls = DEFECTS[n - 1];
      if (!cls) return;
      const body = { kind: "missed_defect", view: f.view, class_name: cls };
      if (f.box) body.box = f.box;
      sendFlag(body);
    } else {
      const t = flagTargets(state.shown)[n - 1];
      if (!t) {
        message(`No detection ${n}.`, "bad");
        return;
      }
      sendFlag({ kind: "false_defect", view: t.view, detection: t.detection });
    }
  }

  function enableDrawing(canvas) {
    let start = null;
    const at = (ev) => {
      const r = canvas.getBoundingClientRect();
      return [((ev.clientX - r.left) * canvas.width) / r.width, ((ev.clientY - r.top) * canvas.height) / r.height];
    };
    const paint = (a, b) => {
      const ctx = canvas.getContext("2d");
      ctx.drawImage(canvas.__bitmap, 0, 0, canvas.width, canvas.height);
      drawBoxes(ctx, canvas.__detections, Number(canvas.dataset.scale));
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = "#ff8c00";
      ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
      ctx.setLineDash([]);
    };
    canvas.addEventListener("mousedown", (ev) => {
      if (!state.flag || state.flag.kind !== "missed_defect") return;
      ev.preventDefault();
      start = at(ev);
    });
    canvas.addEventListener("mousemove", (ev) => {
      if (start) paint(start, at(ev));
    });
    window.addEventListener("mouseup", (ev) => {
      if (!start) return;
      const end = at(ev);
      const a = start;
      start = null;
      if (!state.flag || Math.abs(end[0] - a[0]) < 3 || Math.abs(end[1] - a[1]) < 3) return;
      const scale = Number(canvas.dataset.scale) || 1;
      const clamp = (v, hi) => Math.max(0, Math.min(hi, v / scale));
      const w = canvas.width / scale;
      const h = canvas.height / scale;
      state.flag.box = [clamp(Math.min(a[0], end[0]), w), clamp(Math.min(a[1], end[1]), h), clamp(Math.max(a[0], end[0]), w), clamp(Math.max(a[1], end[1]), h)].map((v) => Math.round(v * 10) / 10);
      state.flag.view = Number(canvas.dataset.view) || 0;
      paint(a, end);
      renderFlag();
    });
  }

  // ------------------------------------------------------------------ drift

  async function loadDrift() {
    if (state.needKey || !state.key) return;
    try {
      state.drift = await api("/v1/feedback/drift");
    } catch (e) {
      return;
    }
    renderBanners();
  }

  // ------------------------------------------------------------------ bench controls

  async function capture() {
    try {
      await api("/station/capture", { method: "POST" });
      message("Capturing…");
    } catch (e) {
      if (e.status !== 401) message(`Cannot capture: ${e.message}`, "bad");
    }
  }

  async function storeReference() {
    try {
      await api("/station/reference", { method: "POST" });
      message("The empty bench is stored as the reference.", "ok");
    } catch (e) {
      if (e.status !== 401) message(e.message, "bad");
    }
  }

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

  // ------------------------------------------------------------------ history

  function historyRow(insp) {
    const item = insp.item || {};
    const final = insp.final || {};
    const decisions = insp.decisions || [];
    const last = decisions[decisions.length - 1];
    const mark = !final.decided ? "pending" : last && last.action === "override" ? "overridden" : "accepted";
    const when = insp.created_at ? new Date(insp.created_at).toLocaleTimeString() : "";
    const button = el(
      "button",
      { type: "button", dataset: { id: insp.id } },
      el("span", {}, when),
      el("span", {}, item.rma || item.lpn || "—"),
      el("span", { class: "g" }, final.grade || (insp.grade && insp.grade.level) || ""),
      el("span", {}, pretty(final.disposition || (insp.disposition && insp.disposition.path))),
      el("span", { class: "muted" }, mark),
    );
    button.addEventListener("click", () => loadInspection(insp.id));
    return el("li", {}, button);
  }

  async function loadHistory(reset) {
    if (state.needKey) return;
    const params = new URLSearchParams({ limit: "20" });
    if (state.historyRma) params.set("rma", state.historyRma);
    if (!reset && state.historyCursor) params.set("cursor", state.historyCursor);
    let page;
    try {
      page = await api(`/v1/inspections?${params}`);
    } catch (e) {
      return;
    }
    const items = Array.isArray(page) ? page : page.items || [];
    state.historyCursor = page.next_cursor || null;
    const rows = items.map(historyRow);
    const list = $("history-list");
    if (reset) list.replaceChildren(...rows);
    else list.append(...rows);
    if (reset && !rows.length) list.replaceChildren(el("li", { class: "muted" }, state.historyRma ? `nothing for ${state.historyRma}` : "no inspections yet"));
    $("history-more").hidden = !state.historyCursor;
  }

  $("history-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.historyRma = $("history-rma").value.trim().toUpperCase();
    loadHistory(true).then(() => {
      const first = document.querySelector("#history-list button");
      if (first) first.focus();
    });
  });
  $("history-more").addEventListener("click", () => loadHistory(false));

  // ------------------------------------------------------------------ keyboard

  function moveInHistory(target, step) {
    const buttons = [...document.querySelectorAll("#history-list button")];
    const i = buttons.indexOf(target);
    const next = buttons[i + step];
    if (next) next.focus();
    else if (step < 0) $("history-rma").focus();
  }

  document.addEventListener("keydown", (ev) => {
    if ($("key-dialog").open) return;
    const t = ev.target;
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === "k" || ev.key === "K")) {
      ev.preventDefault();
      askKey("");
      return;
    }
    const inField = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
    if (inField) {
      if (ev.key === "Escape") {
        t.blur();
        ev.preventDefault();
      } else if (ev.key === "ArrowDown" && t.id === "history-rma") {
        const first = document.querySelector("#history-list button");
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      }
      return;
    }
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const inHistory = t && t.tagName === "BUTTON" && t.closest("#history-list");
    if (inHistory && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      ev.preventDefault();
      moveInHistory(t, ev.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (state.flag) {
      if (ev.key === "Escape") {
        ev.preventDefault();
        cancelFlag(false);
      } else if (/^[1-9]$/.test(ev.key)) {
        ev.preventDefault();
        pickFlag(Number(ev.key));
      } else if (ev.key === "Enter" && state.flag.kind === "missed_defect") {
        ev.preventDefault();
        const f = state.flag;
        sendFlag(f.box ? { kind: "missed_defect", view: f.view, box: f.box } : { kind: "missed_defect", view: f.view });
      }
      return;
    }
    if (state.override) {
      if (ev.key === "Escape") {
        ev.preventDefault();
        cancelOverride();
        message("Override cancelled.");
        showPending();
      } else if (/^[1-9]$/.test(ev.key)) {
        ev.preventDefault();
        pickReason(Number(ev.key));
      }
      return;
    }
    const onButton = t && t.tagName === "BUTTON";
    switch (ev.key) {
      case "Enter":
        if (onButton) return; // a focused button (a history row) acts on Enter itself
        ev.preventDefault();
        accept();
        break;
      case " ":
        if (onButton) return;
        ev.preventDefault();
        capture();
        break;
      case "r":
      case "R":
      case "l":
      case "L":
        // No preventDefault: the letter lands in the field, so a scanner's "RMA…" or "LPN…" arrives whole.
        $("item-code").focus();
        break;
      case "/":
        ev.preventDefault();
        $("history-rma").focus();
        $("history-rma").select();
        break;
      case "h":
      case "H": {
        ev.preventDefault();
        const first = document.querySelector("#history-list button");
        if (first) first.focus();
        break;
      }
      case "b":
      case "B":
        ev.preventDefault();
        storeReference();
        break;
      case "m":
      case "M":
        ev.preventDefault();
        startFlag("missed_defect");
        break;
      case "f":
      case "F":
        ev.preventDefault();
        startFlag("false_defect");
        break;
      case "Escape":
        if (t && t.blur) t.blur();
        break;
      default:
        if (/^[1-9]$/.test(ev.key)) {
          ev.preventDefault();
          startOverride(Number(ev.key));
        }
    }
  });

  // ------------------------------------------------------------------ start

  async function start() {
    startLive();
    try {
      await api("/station/status");
    } catch (e) {
      if (e.status === 401) {
        if (!state.key) $("key-error").textContent = "";
      }
    }
    if (!state.needKey) {
      openLiveSession();
      loadHistory(true);
    }
    loadDrift();
    setInterval(loadDrift, DRIFT_EVERY_MS);
    pollLoop();
  }

  start();
})();
