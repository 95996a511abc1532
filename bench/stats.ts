/** Quantile of sorted-or-not samples (nearest rank). */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

/** Prints a result table row by row and a final JSON line for machines. */
export function report(name: string, rows: Record<string, string | number>[], verdict: Record<string, unknown>): void {
  console.log(`\n## ${name}`);
  const keys = Object.keys(rows[0] ?? {});
  console.log(`| ${keys.join(" | ")} |`);
  console.log(`|${keys.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${keys.map((k) => r[k]).join(" | ")} |`);
  console.log(`RESULT ${JSON.stringify({ bench: name, ...verdict })}`);
}
