// How values read on the page: states in words (with a symbol, never colour alone),
// durations, times and JSON values.

const STATES = {
  queued: { symbol: "…", word: "queued" },
  scheduled: { symbol: "◷", word: "scheduled" },
  running: { symbol: "▶", word: "running" },
  done: { symbol: "✓", word: "done" },
  failed: { symbol: "✗", word: "failed" },
  cancelled: { symbol: "⊘", word: "cancelled" },
};

export const FINAL_STATES = new Set(["done", "failed", "cancelled"]);

// The state a job is in once a reply of this kind is recorded.
export const STATE_AFTER = { result: "running", done: "done", error: "failed", cancelled: "cancelled" };

export function stateLabel(state) {
  const known = STATES[state] ?? { symbol: "?", word: String(state) };
  return `${known.symbol} ${known.word}`;
}

export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(value % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function between(earlier, later) {
  const start = Date.parse(earlier);
  const end = Date.parse(later);
  if (Number.isNaN(start) || Number.isNaN(end)) return null;
  return Math.max(0, (end - start) / 1000);
}

export function clock(timestamp) {
  const when = new Date(timestamp);
  if (Number.isNaN(when.getTime())) return "—";
  const sameDay = when.toDateString() === new Date().toDateString();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  return sameDay ? time : `${when.toLocaleDateString()} ${time}`;
}

// A reply's value as text: a string as it is, anything else as indented JSON.
export function valueText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export const FOLD_CHARS = 240;
export const FOLD_LINES = 8;

export function isLong(text) {
  return text.length > FOLD_CHARS || text.split("\n").length > FOLD_LINES;
}

export function firstLine(text, chars = 80) {
  const line = text.split("\n", 1)[0];
  return line.length > chars ? `${line.slice(0, chars)}…` : line;
}
