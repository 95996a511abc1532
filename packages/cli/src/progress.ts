/** One progress line: a bar, counts and ETA (pure, for a terminal or a log). */
export function renderProgress(label: string, done: number, total: number, extra = "", width = 30): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * width);
  return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${(fraction * 100).toFixed(1)}%${extra ? ` ${extra}` : ""}`;
}

/** Seconds as "1h02m", "3m05s" or "42s". */
export function formatEta(seconds: number): string {
  if (!(seconds > 0)) return "";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}
