// The decision on the shown inspection: Enter accepts it; an override (see override.js) is sent from here too.

import { api } from "./api.js";
import { message, pretty } from "./dom.js";
import { reloadHistory } from "./history.js";
import { probe } from "./probe.js";
import { current, justArrived, update } from "./result.js";

export async function decide(body) {
  const insp = current();
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
  update(await api(`/v1/inspections/${encodeURIComponent(insp.id)}`).catch(() => null));
  message(body.action === "accept" ? "Accepted." : `Overridden (${pretty(body.reason_code)}).`, "ok");
  reloadHistory(true);
}

export function accept() {
  if (justArrived()) return;
  const insp = current();
  if (insp && insp.final && insp.final.decided) {
    message("Already decided: press 1–9 to override.", "bad");
    return;
  }
  decide({ action: "accept" });
}
