// The detector's classes as the server names and colours them (GET /v1/labelmap, fed by the one labelmap).

import { api } from "./api.js";

const UNKNOWN_COLOUR = "#c8c8c8";

let classes = [];
let loading = null;

// Loaded once; a failed load (no key yet, server away) is tried again on the next call.
export function loadLabelmap() {
  if (!loading) {
    loading = api("/v1/labelmap")
      .then((body) => {
        classes = body.classes || [];
      })
      .catch(() => {
        loading = null;
      });
  }
  return loading;
}

// The classes an operator can name for a missed defect, in id order (the labelmap without the item).
export const defectNames = () => classes.filter((c) => c.defect).map((c) => c.name);

export function colourOf(classId) {
  const c = classes.find((x) => x.id === classId);
  return (c && c.colour) || UNKNOWN_COLOUR;
}
