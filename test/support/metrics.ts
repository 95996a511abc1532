/**
 * Sum of a metric's samples in a Prometheus text exposition, over the series whose labels include
 * every pair of `labels` (all series when none are given).
 */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}
