// The captured views of an inspection, drawn on canvases with their detection boxes.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { number, t, term } from "./i18n.js";
import { colourOf, loadLabelmap } from "./labelmap.js";

// ``stillShown`` says whether the inspection is still the one on the page once its pictures arrive.
export async function drawViews(insp, stillShown) {
  const box = $("views");
  const views = insp.views || [];
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
      repaint(canvas);
    }),
  );
}

// The view and its boxes again (under a box being dragged); returns the drawing context.
export function repaint(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.drawImage(canvas.__bitmap, 0, 0, canvas.width, canvas.height);
  drawBoxes(ctx, canvas.__detections, Number(canvas.dataset.scale));
  return ctx;
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
