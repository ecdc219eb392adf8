// The decision on the shown inspection: Enter accepts it; an override (see override.js) is sent from here too.

import { api } from "./api.js";
import { message } from "./dom.js";
import { errorText } from "./explain.js";
import { reloadHistory } from "./history.js";
import { t, term } from "./i18n.js";
import { probe } from "./probe.js";
import { current, justArrived, update } from "./result.js";

export async function decide(body) {
  const insp = current();
  if (!insp) {
    message(t("msg.nothing_to_decide"), "bad");
    return;
  }
  try {
    await api(`/v1/inspections/${encodeURIComponent(insp.id)}/decision`, { method: "POST", json: body });
  } catch (e) {
    if (e.status !== 401) message(t("msg.not_saved", { error: errorText(e) }), "bad");
    return;
  }
  probe.decisions.push({ id: insp.id, ...body });
  update(await api(`/v1/inspections/${encodeURIComponent(insp.id)}`).catch(() => null));
  const said = body.action === "accept" ? t("msg.accepted") : t("msg.overridden", { reason: term("override_reason", body.reason_code) });
  message(said, "ok");
  reloadHistory(true);
}

export function accept() {
  if (justArrived()) return;
  const insp = current();
  if (insp && insp.final && insp.final.decided) {
    message(t("msg.already_decided"), "bad");
    return;
  }
  decide({ action: "accept" });
}
