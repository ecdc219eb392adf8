// Read by the browser tests: when each inspection became visible, and the decisions and flags sent.

export const probe = { shownAt: {}, decisions: [], flags: [], initialId: null };
window.__station = probe;
