/**
 * The HTML evaluation report: self-contained (inline SVG plots, images as data URIs), so it can be
 * stored in S3, served by the console or opened from disk.
 */
import type { FrontierResult } from "./frontier.js";
import { frontierSvg } from "./frontier-report.js";
import type { EvalReport, RunReport } from "./report.js";

/** Images to show per user of a run: catalogue items they liked and what was generated. */
export type Galleries = Record<string, Record<string, { liked: string[]; generated: string[] }>>;

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Counts of `values` in `bins` equal-width bins over [lo, hi]. */
export function histogram(values: number[], lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins || 1;
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / w)))]!++;
  return counts;
}

const W = 420;
const H = 160;
const PAD = 28;

/** Histogram of the null distribution with the observed statistic marked by a red line. */
export function nullPlotSvg(run: RunReport): string {
  const lo = Math.min(...run.nullStatistics, run.statistic, 0);
  const hi = Math.max(...run.nullStatistics, run.statistic, 1);
  const bins = 40;
  const counts = histogram(run.nullStatistics, lo, hi, bins);
  const top = Math.max(...counts, 1);
  const x = (v: number) => PAD + ((v - lo) / (hi - lo || 1)) * (W - 2 * PAD);
  const bw = (W - 2 * PAD) / bins;
  const bars = counts
    .map(
      (c, i) =>
        `<rect x="${(PAD + i * bw).toFixed(1)}" y="${(H - PAD - (c / top) * (H - 2 * PAD)).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${((c / top) * (H - 2 * PAD)).toFixed(1)}" fill="#8aa"/>`,
    )
    .join("");
  const xo = x(run.statistic).toFixed(1);
  return `<svg class="plot" role="img" aria-label="null distribution" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#444"/>${bars}
<line x1="${xo}" y1="${PAD / 2}" x2="${xo}" y2="${H - PAD}" stroke="#c00" stroke-width="2"/>
<text x="${xo}" y="${PAD / 2 + 2}" font-size="11" fill="#c00" text-anchor="middle">observed T = ${run.statistic.toFixed(3)}</text>
<text x="${PAD}" y="${H - 8}" font-size="10">${lo.toFixed(2)}</text><text x="${W - PAD}" y="${H - 8}" font-size="10" text-anchor="end">${hi.toFixed(2)}</text>
<text x="${W / 2}" y="${H - 8}" font-size="10" text-anchor="middle">T under shuffled user labels (B = ${run.permutations}), p = ${run.p.toFixed(4)}</text></svg>`;
}

/** Per-user score distributions: one row per user, own items' scores as dots, others' mean as a tick. */
export function perUserPlotSvg(run: RunReport, maxUsers = 60): string {
  const users = [...run.perUser].sort((a, b) => b.own - a.own).slice(0, maxUsers);
  const rowH = 8;
  const h = users.length * rowH + 2 * PAD;
  const x = (v: number) => PAD + v * (W - 2 * PAD);
  const rows = users
    .map((u, r) => {
      const y = PAD + r * rowH + rowH / 2;
      const dots = u.scores.map((s) => `<circle cx="${x(s).toFixed(1)}" cy="${y}" r="2" fill="#268" fill-opacity=".6"/>`).join("");
      return `${dots}<line x1="${x(u.others).toFixed(1)}" y1="${y - 3}" x2="${x(u.others).toFixed(1)}" y2="${y + 3}" stroke="#c60" stroke-width="2"><title>${escapeHtml(u.userId)}: others ${u.others.toFixed(3)}</title></line>`;
    })
    .join("");
  return `<svg class="plot" role="img" aria-label="per-user scores" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}">
<line x1="${x(0)}" y1="${h - PAD}" x2="${x(1)}" y2="${h - PAD}" stroke="#444"/>${rows}
<text x="${x(0)}" y="${h - 8}" font-size="10">0</text><text x="${x(1)}" y="${h - 8}" font-size="10" text-anchor="end">1</text>
<text x="${W / 2}" y="${h - 8}" font-size="10" text-anchor="middle">P(like): blue = own items, orange = mean for other users</text></svg>`;
}

function summaryTable(report: EvalReport): string {
  const head = [
    "run",
    "batch",
    "model",
    "sampler",
    "steps",
    "g",
    "verifier",
    "users",
    "items",
    "T",
    "ΔT",
    "p",
    "own",
    "others",
    "effect",
    "F1@1",
    "P@5",
    "R@5",
    "diversity",
  ];
  const rows = report.runs.map((r, j) => {
    const at = (k: number) => r.retrieval.find((x) => x.k === k);
    const c = report.comparison.rows[j]!;
    return [
      r.label,
      r.batchId,
      r.modelVersion,
      r.sampler,
      r.steps,
      r.guidance,
      r.verifier,
      r.users,
      r.items,
      r.statistic.toFixed(4),
      c.delta.toFixed(4),
      r.p.toFixed(4),
      r.own.toFixed(3),
      r.others.toFixed(3),
      r.effect.toFixed(3),
      at(1)?.f1.toFixed(3) ?? "",
      at(5)?.precision.toFixed(3) ?? "",
      at(5)?.recall.toFixed(3) ?? "",
      r.diversity.toFixed(3),
    ];
  });
  return `<div class="scroll"><table class="summary"><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(String(c))}</td>`).join("")}</tr>`).join("")}</table></div>`;
}

/** Renders the whole report. `galleries` is optional (per run batch id, per user). */
export function renderReportHtml(report: EvalReport, galleries: Galleries = {}, title = "Rebeca evaluation", galleryUsers = 12): string {
  const img = (src: string) => `<img src="${escapeHtml(src)}" width="56" height="56" alt="">`;
  const runs = report.runs
    .map((r) => {
      const g = galleries[r.batchId] ?? {};
      const shown = [...r.perUser]
        .sort((a, b) => b.own - a.own)
        .filter((u) => g[u.userId])
        .slice(0, galleryUsers);
      const grids = shown
        .map(
          (u) =>
            `<div class="user"><h4>${escapeHtml(u.userId)} <small>own ${u.own.toFixed(2)} · others ${u.others.toFixed(2)}</small></h4><div class="row"><span>liked</span>${g[u.userId]!.liked.map(img).join("")}</div><div class="row"><span>generated</span>${g[u.userId]!.generated.map(img).join("")}</div></div>`,
        )
        .join("");
      return `<section class="run" id="run-${escapeHtml(r.batchId)}">
<h2>${escapeHtml(r.label)} <small>batch ${escapeHtml(r.batchId)} · ${escapeHtml(r.modelVersion)} · ${escapeHtml(r.verifier)} verifier</small></h2>
<p class="verdict ${r.p <= 0.01 ? "pass" : "fail"}">T = ${r.statistic.toFixed(3)}, p = ${r.p.toFixed(4)}, own − others = ${r.effect.toFixed(3)} (${r.p <= 0.01 ? "personalized" : "not shown to be personalized"} at p ≤ 0.01)</p>
<div class="plots"><figure>${nullPlotSvg(r)}<figcaption>Permutation test</figcaption></figure><figure>${perUserPlotSvg(r)}<figcaption>Per-user verifier scores</figcaption></figure></div>
${grids ? `<h3>Liked vs generated</h3><div class="grids">${grids}</div>` : ""}
</section>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5rem; background: #fafafa; color: #222; }
.scroll { overflow-x: auto; } table.summary { border-collapse: collapse; font-size: 12px; } th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
section.run { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .5rem 1rem; margin: 1rem 0; }
h2 small, h4 small { color: #666; font-weight: normal; } .verdict.pass { color: #060; } .verdict.fail { color: #a00; }
.plots { display: flex; gap: 1rem; flex-wrap: wrap; } figure { margin: 0; } figcaption { font-size: 12px; color: #666; }
.grids { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: .5rem; }
.row span { display: inline-block; width: 5em; font-size: 11px; color: #666; } img { image-rendering: pixelated; background: #000; margin: 1px; }
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>Generated ${escapeHtml(report.generatedAt)}. T is the paper's statistic (median over users of their items' mean verifier P(like)); ΔT is against the first run (${escapeHtml(report.comparison.baseline)}).</p>
${summaryTable(report)}
${report.samplers ? samplersSection(report.samplers) : "<p>No DDPM-1000 run: samplers are not judged (the rule compares them with DDPM-1000's frontier).</p>"}
${runs}
</body></html>
`;
}

/** The samplers' T-vs-diversity plot and, per configuration, whether it qualifies by the frontier rule. */
function samplersSection(r: FrontierResult): string {
  const rows = r.samplers.map(
    (s) =>
      `<p class="verdict ${s.qualifies ? "pass" : "fail"}">${escapeHtml(s.config)}: ${s.comparable} comparable points, worst lower bound of the frontier gap ${s.worstLower === undefined ? "–" : s.worstLower.toFixed(3)} vs −${r.noise.T.toFixed(3)} (${escapeHtml(r.baseline)} seed noise) → ${s.qualifies ? "qualifies" : "does not qualify"}</p>`,
  );
  const d = r.defaults;
  return `<h2>Samplers on the frontier <small>(gap to ${escapeHtml(r.baseline)}'s T-vs-diversity curve, 95 % bootstrap over users)</small></h2>
<figure>${frontierSvg(r, "T vs diversity over the guidance sweep")}</figure>
${rows.join("\n")}
<p>${d ? `Default by the rule: ${escapeHtml(d.sampler)}, ${d.steps} evaluations, ${escapeHtml(d.spacing)} spacing, g = ${d.guidance}.` : "No fast sampler qualifies."}</p>`;
}
