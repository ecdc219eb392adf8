// The captured views of an inspection, drawn on canvases with their detection boxes; on demand (key A) the
// anomaly model's heat map instead of the picture.

import { api } from "./api.js";
import { $, el, message } from "./dom.js";
import { errorText } from "./explain.js";
import { number, t, term } from "./i18n.js";
import { colourOf, loadLabelmap } from "./labelmap.js";

// ``stillShown`` says whether the inspection is still the one on the page once its pictures arrive.
export async function drawViews(insp, stillShown) {
  const box = $("views");
  const views = insp.views || [];
  heatShown = false;
  $("heat-toggle").hidden = !views.some((v) => v.anomaly);
  $("heat-toggle").setAttribute("aria-pressed", "false");
  const canvases = views.map((v) => el("canvas", { width: v.width || 640, height: v.height || 480, "aria-label": t("result.view", { n: v.n }) }));
  box.replaceChildren(...canvases);
  await loadLabelmap(); // the box colours
  await Promise.all(
    views.map(async (v, i) => {
      const url = v.image_url || `/v1/inspections/${encodeURIComponent(insp.id)}/images/${v.n ?? i}`;
      let bitmap;
      try {
        bitmap = await createImageBitmap(await api(url, { blob: true }));
      } catch (e) {
        return;
      }
      if (!stillShown()) return;
      const canvas = canvases[i];
      const scale = Math.min(1, (views.length > 1 ? 320 : 560) / bitmap.width);
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.dataset.scale = String(scale);
      canvas.dataset.view = String(v.n ?? i);
      canvas.__bitmap = bitmap;
      canvas.__detections = v.detections || [];
      canvas.__anomaly = v.anomaly || null;
      repaint(canvas);
    }),
  );
}

// The view and its boxes again (under a box being dragged); returns the drawing context.
export function repaint(canvas) {
  const ctx = canvas.getContext("2d");
  const heat = canvas.dataset.heat === "1" && canvas.__heat;
  ctx.drawImage(heat || canvas.__bitmap, 0, 0, canvas.width, canvas.height);
  drawBoxes(ctx, canvas.__detections, Number(canvas.dataset.scale));
  return ctx;
}

let heatShown = false;

// Show or hide the anomaly heat maps of the views an anomaly model scored (each fetched once, as a PNG of the view).
export async function toggleHeat() {
  const canvases = [...document.querySelectorAll("#views canvas")].filter((c) => c.__anomaly);
  if (!canvases.length) {
    message(t("msg.heat_none"));
    return;
  }
  heatShown = !heatShown;
  if (heatShown) {
    try {
      await Promise.all(
        canvases.map(async (c) => {
          if (!c.__heat) c.__heat = await createImageBitmap(await api(c.__anomaly.heat_url, { blob: true }));
        }),
      );
    } catch (e) {
      heatShown = false;
      message(errorText(e), "error");
      return;
    }
  }
  for (const c of canvases) {
    c.dataset.heat = heatShown ? "1" : "";
    repaint(c);
  }
  $("heat-toggle").setAttribute("aria-pressed", String(heatShown));
  message(t(heatShown ? "msg.heat_on" : "msg.heat_off"));
}

export function initHeat() {
  $("heat-toggle").addEventListener("click", () => toggleHeat());
}

function drawBoxes(ctx, dets, scale) {
  ctx.font = "bold 13px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const det of dets) {
    const [x1, y1, x2, y2] = det.xyxy.map((v) => v * scale);
    const colour = colourOf(det.class_id);
    const isItem = det.class_name === "item";
    ctx.lineWidth = isItem ? 1 : 2.5;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = `${term("defect", det.class_name)} ${number(det.confidence, 2)}`;
    const w = ctx.measureText(label).width + 6;
    const ty = y1 - 16 >= 0 ? y1 : y2 + 16;
    ctx.fillStyle = colour;
    ctx.fillRect(x1, ty - 16, w, 16);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + 3, ty - 1);
  }
}
