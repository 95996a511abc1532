/**
 * Presentation of a frontier judgement (frontier.ts): a Markdown table for docs and terminals and an
 * SVG plot of T against diversity, one line per sampler configuration over its guidance sweep.
 */
import type { FrontierPoint, FrontierResult } from "./frontier.js";

const f = (x: number | undefined, d = 3) => (x === undefined ? "–" : x.toFixed(d));
const signed = (x: number | undefined) => (x === undefined ? "–" : (x >= 0 ? "+" : "") + x.toFixed(3));

/** Per configuration and guidance (both seed sets side by side, the gap pooled), then the verdict per configuration. */
export function frontierTable(r: FrontierResult, title: string): string {
  const lines = [
    `### ${title}: baseline ${r.baseline}, seed-to-seed noise |ΔT| ≤ ${r.noise.T.toFixed(3)}, |Δdiversity| ≤ ${r.noise.diversity.toFixed(3)}`,
    "",
    "| sampler | g | T (set 0 / 1) | diversity (set 0 / 1) | frontier gap [5 %, 95 %] | energy dist. vs DDPM (floor) |",
    "|---|---|---|---|---|---|",
  ];
  const sets = (p: FrontierPoint, f: (x: { T: number; diversity: number }) => number) => p.bySeedSet.map((x) => f(x).toFixed(3)).join(" / ");
  for (const p of r.points) {
    const gap =
      p.config === r.baseline ? "–" : p.gap === undefined ? "below range" : `${signed(p.gap)} [${signed(p.lo)}, ${signed(p.hi)}]${p.passes ? "" : " ✗"}`;
    const energy = p.energy !== undefined ? `${f(p.energy)} (${f(p.energyFloor)})` : p.energyFloor !== undefined ? `(${f(p.energyFloor)})` : "–";
    lines.push(`| ${p.config} | ${p.guidance} | ${sets(p, (x) => x.T)} | ${sets(p, (x) => x.diversity)} | ${gap} | ${energy} |`);
  }
  lines.push("", "| sampler | evaluations | comparable points | worst lower bound | qualifies (lower bound ≥ −noise everywhere) |", "|---|---|---|---|---|");
  for (const s of [...r.samplers].sort((a, b) => a.steps - b.steps)) {
    lines.push(`| ${s.config} | ${s.steps} | ${s.comparable} | ${signed(s.worstLower)} | ${s.qualifies ? "yes" : "no"} |`);
  }
  const d = r.defaults;
  lines.push("", d ? `Default: **${d.sampler}, ${d.steps} evaluations, ${d.spacing} spacing, g = ${d.guidance}**.` : "No fast sampler qualifies.");
  return lines.join("\n");
}

const PALETTE = [
  "#000",
  "#c0392b",
  "#2471a3",
  "#27ae60",
  "#8e44ad",
  "#d35400",
  "#16a085",
  "#7f8c8d",
  "#f1c40f",
  "#2c3e50",
  "#e84393",
  "#6c5ce7",
  "#00b894",
  "#a0522d",
];

/** T (y) against diversity (x), seed sets pooled, one polyline per configuration in guidance order. */
export function frontierSvg(r: FrontierResult, title: string, width = 760, height = 440): string {
  const configs = [r.baseline, ...new Set(r.points.map((p) => p.config).filter((c) => c !== r.baseline))];
  const series = configs.map((c) => {
    const ps = r.points.filter((p) => p.config === c).sort((a, b) => a.guidance - b.guidance);
    return { c, pts: ps.map((p) => ({ g: p.guidance, x: p.diversity, y: p.T })) };
  });
  const all = series.flatMap((s) => s.pts);
  const [x0, x1] = [Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x))];
  const [y0, y1] = [Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y))];
  const L = 60,
    R = 200,
    T = 30,
    B = 45;
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (width - L - R);
  const py = (y: number) => T + ((y1 - y) / (y1 - y0 || 1)) * (height - T - B);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="13">${title}</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const x = x0 + ((x1 - x0) * k) / 4;
    const y = y0 + ((y1 - y0) * k) / 4;
    out.push(
      `<line x1="${px(x).toFixed(1)}" x2="${px(x).toFixed(1)}" y1="${T}" y2="${height - B}" stroke="#eee"/><text x="${px(x).toFixed(1)}" y="${height - B + 14}" text-anchor="middle">${x.toFixed(3)}</text>`,
    );
    out.push(
      `<line x1="${L}" x2="${width - R}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#eee"/><text x="${L - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${y.toFixed(3)}</text>`,
    );
  }
  out.push(`<text x="${(L + width - R) / 2}" y="${height - 8}" text-anchor="middle">diversity (mean pairwise cosine distance per user)</text>`);
  out.push(
    `<text x="14" y="${(T + height - B) / 2}" transform="rotate(-90 14 ${(T + height - B) / 2})" text-anchor="middle">T = median over users of m_u</text>`,
  );
  series.forEach((s, k) => {
    const colour = PALETTE[k % PALETTE.length]!;
    const w = s.c === r.baseline ? 3 : 1.5;
    out.push(
      `<polyline points="${s.pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")}" fill="none" stroke="${colour}" stroke-width="${w}"/>`,
    );
    for (const p of s.pts)
      out.push(
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="2.5" fill="${colour}"><title>${s.c} g=${p.g}: T ${p.y.toFixed(3)}, diversity ${p.x.toFixed(3)}</title></circle>`,
      );
    const ly = T + 12 + 15 * k;
    out.push(
      `<line x1="${width - R + 10}" x2="${width - R + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="${w}"/><text x="${width - R + 36}" y="${ly}">${s.c}</text>`,
    );
  });
  const g = series[0]!.pts;
  if (g.length)
    out.push(
      `<text x="${px(g[0]!.x).toFixed(1)}" y="${(py(g[0]!.y) - 6).toFixed(1)}" font-size="9">g=${g[0]!.g}</text><text x="${px(g[g.length - 1]!.x).toFixed(1)}" y="${(py(g[g.length - 1]!.y) - 6).toFixed(1)}" font-size="9">g=${g[g.length - 1]!.g}</text>`,
    );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
