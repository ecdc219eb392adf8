// The operator page: live view, last inspection, accept / override, flags, history.
// Plain browser ES modules, no build step and nothing fetched from elsewhere.
// Everything works from the keyboard; see the key list in the footer.

import { api, askKey, hasKey, initKeyPrompt, needsKey, onKeyAccepted } from "./api.js";
import { initItemForm } from "./bench.js";
import { initFlags } from "./flags.js";
import { initHistory, reloadHistory } from "./history.js";
import { initLanguage, initLanguagePicker } from "./i18n.js";
import { initKeys } from "./keys.js";
import { initLabel } from "./label.js";
import { loadLabelmap } from "./labelmap.js";
import { openLiveSession, startLive } from "./live.js";
import { initOverride } from "./override.js";
import { show } from "./result.js";
import { loadDrift, pollStatus, watchDrift } from "./status.js";
import { initHeat } from "./views.js";

function whenKeyed() {
  openLiveSession();
  reloadHistory(true);
  loadLabelmap();
}

async function start() {
  try {
    await initLanguage();
  } catch (_) {
    /* no catalogue: the page stays in its English shell */
  }
  initLanguagePicker();
  initKeyPrompt();
  initItemForm();
  initHistory(show);
  initOverride();
  initFlags();
  initKeys();
  initHeat();
  initLabel();
  onKeyAccepted(() => {
    whenKeyed();
    loadDrift();
  });
  startLive();
  try {
    await api("/station/status");
  } catch (e) {
    if (e.status === 401 && !hasKey()) askKey(""); // a first visit: the prompt, without "refused"
  }
  if (!needsKey()) whenKeyed();
  watchDrift();
  pollStatus();
}

start();
