// The keyboard: every action of the page has a key (see the footer); fields and the key prompt keep theirs.

import { askKey } from "./api.js";
import { capture, storeReference } from "./bench.js";
import { accept } from "./decision.js";
import { $, message } from "./dom.js";
import { cancelFlag, flagging, pickFlag, sendUnclassified, startFlag } from "./flags.js";
import { firstRow, moveInHistory } from "./history.js";
import { nextLanguage, t } from "./i18n.js";
import { reprint } from "./label.js";
import { cancelOverride, overriding, pickReason, startOverride } from "./override.js";
import { showPending } from "./result.js";
import { choosingLine, goOnWithout, pickLine } from "./returns.js";
import { toggleHeat } from "./views.js";

function inField(ev) {
  const t = ev.target;
  if (ev.key === "Escape") {
    t.blur();
    ev.preventDefault();
  } else if (ev.key === "ArrowDown" && t.id === "history-rma") {
    const first = firstRow();
    if (first) {
      ev.preventDefault();
      first.focus();
    }
  }
}

function whileFlagging(ev) {
  if (ev.key === "Escape") {
    ev.preventDefault();
    cancelFlag(false);
  } else if (/^[1-9]$/.test(ev.key)) {
    ev.preventDefault();
    pickFlag(Number(ev.key));
  } else if (ev.key === "Enter" && sendUnclassified()) {
    ev.preventDefault();
  }
}

function whileOverriding(ev) {
  if (ev.key === "Escape") {
    ev.preventDefault();
    cancelOverride();
    message(t("msg.override_cancelled"));
    showPending();
  } else if (/^[1-9]$/.test(ev.key)) {
    ev.preventDefault();
    pickReason(Number(ev.key));
  }
}

function whileChoosingLine(ev) {
  if (ev.key === "Escape") {
    ev.preventDefault();
    goOnWithout();
  } else if (/^[1-9]$/.test(ev.key)) {
    ev.preventDefault();
    pickLine(Number(ev.key));
  }
  return ev.defaultPrevented;
}

function onKey(ev) {
  if ($("key-dialog").open) return;
  const t = ev.target;
  if ((ev.ctrlKey || ev.metaKey) && (ev.key === "k" || ev.key === "K")) {
    ev.preventDefault();
    askKey("");
    return;
  }
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) {
    inField(ev);
    return;
  }
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const inHistory = t && t.tagName === "BUTTON" && t.closest("#history-list");
  if (inHistory && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
    ev.preventDefault();
    moveInHistory(t, ev.key === "ArrowDown" ? 1 : -1);
    return;
  }
  if (flagging()) {
    whileFlagging(ev);
    return;
  }
  if (overriding()) {
    whileOverriding(ev);
    return;
  }
  if (choosingLine() && whileChoosingLine(ev)) return; // the expected return's line first, then the rest
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
      const first = firstRow();
      if (first) first.focus();
      break;
    }
    case "t":
    case "T":
      ev.preventDefault();
      nextLanguage();
      break;
    case "p":
    case "P":
      ev.preventDefault();
      reprint();
      break;
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
    case "u":
    case "U":
      ev.preventDefault();
      startFlag("anomaly");
      break;
    case "a":
    case "A":
      ev.preventDefault();
      toggleHeat();
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
}

export function initKeys() {
  document.addEventListener("keydown", onKey);
}
