/** Server-rendered console pages. Pure: records in, HTML out; every value is escaped. */
import type { BatchRecord } from "@rebeca/contracts";
import type { Principal } from "./auth.js";

export const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const seg = (s: string) => encodeURIComponent(s);

export function layout(title: string, body: string, who?: Principal, refreshSeconds?: number): string {
  const nav = who
    ? `<nav><a href="/batches">Batches</a> <a href="/usage">Usage</a>${who.role === "admin" ? ` <a href="/queues/">Queues</a>` : ""} <span class="who">${who.role === "admin" ? "admin" : `tenant ${esc(who.tenant)}`}</span>
<form method="post" action="/logout" class="inline"><button type="submit">Sign out</button></form></nav>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Rebeca console</title>${refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : ""}
<style>
body { font: 14px system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
nav { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1rem; align-items: center; }
nav a { color: #cfe0ff; } nav .who { margin-left: auto; color: #aab; } form.inline { display: inline; }
main { padding: 1rem 1.2rem; } table { border-collapse: collapse; background: #fff; } th, td { border: 1px solid #dde; padding: 4px 8px; text-align: left; }
.bar { width: 160px; height: 10px; background: #e4e6ee; border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #2f7d4f; }
.gallery img { width: 112px; height: 112px; image-rendering: pixelated; background: #000; margin: 3px; }
.login { max-width: 24rem; margin: 4rem auto; background: #fff; padding: 1.5rem; border: 1px solid #dde; border-radius: 8px; }
.login input { width: 100%; box-sizing: border-box; padding: .4rem; margin: .5rem 0; } .error { color: #a00; }
</style></head><body>${nav}<main>
${body}
</main></body></html>
`;
}

export function loginPage(error?: string): string {
  return layout(
    "Sign in",
    `<form class="login" method="post" action="/login">
<h1>Rebeca console</h1>
<p>Sign in with your tenant's API key or the admin key.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
<label for="key">Key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** "3m 20s" style durations for ETAs. */
export function formatDuration(seconds: number): string {
  if (!(seconds > 0)) return "";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

export function progress(b: BatchRecord): { done: number; total: number; fraction: number } {
  const total = b.state === "receiving" ? b.counts.received : b.counts.total;
  const done = b.counts.succeeded + b.counts.failed + b.counts.cancelled + b.counts.expired;
  return { done, total, fraction: total > 0 ? Math.min(1, done / total) : 0 };
}

const batchHref = (b: { tenant: string; batchId: string }) => `/batches/${seg(b.tenant)}/${seg(b.batchId)}`;

export function batchesPage(who: Principal, batches: { record: BatchRecord; eta: number }[]): string {
  const rows = batches
    .map(({ record: b, eta }) => {
      const p = progress(b);
      return `<tr data-batch="${esc(b.batchId)}"><td><a href="${batchHref(b)}">${esc(b.batchId)}</a></td><td>${esc(b.tenant)}</td><td>${esc(b.requestId)}</td><td>${esc(b.state)}</td>
<td><span class="bar"><span style="width:${(p.fraction * 100).toFixed(1)}%"></span></span> ${p.done}/${p.total}</td><td>${esc(formatDuration(eta))}</td>
<td>${esc(b.spec.modelVersion)} · ${esc(b.spec.sampler)}${b.spec.sampler === "ddim" ? `-${b.spec.steps}` : ""} · g=${esc(b.spec.guidance)}</td><td>${esc(b.createTime)}</td></tr>`;
    })
    .join("\n");
  const running = batches.some(({ record }) => record.state === "running" || record.state === "receiving");
  return layout(
    "Batches",
    `<h1>Batches</h1>
<table id="batches"><tr><th>batch</th><th>tenant</th><th>request id</th><th>state</th><th>progress</th><th>ETA</th><th>model</th><th>created</th></tr>
${rows || `<tr><td colspan="8">no batches yet</td></tr>`}
</table>`,
    who,
    running ? 5 : undefined,
  );
}

export interface EvalSummary {
  statistic: number;
  p: number;
  effect: number;
  verifier: string;
}

export function batchPage(
  who: Principal,
  b: BatchRecord,
  eta: number,
  users: { position: number; userId: string; images: number; error?: string }[],
  more: boolean,
  evaluation?: EvalSummary,
): string {
  const p = progress(b);
  const rows = users
    .map(
      (u) =>
        `<tr><td>${u.position}</td><td>${u.images > 0 ? `<a href="${batchHref(b)}/users/${u.position}">${esc(u.userId)}</a>` : esc(u.userId)}</td><td>${u.images}</td><td>${esc(u.error ?? "")}</td></tr>`,
    )
    .join("\n");
  return layout(
    b.batchId,
    `<h1>Batch ${esc(b.batchId)}</h1>
<p>${esc(b.tenant)} · request ${esc(b.requestId)} · <strong>${esc(b.state)}</strong> · <span class="bar"><span style="width:${(p.fraction * 100).toFixed(1)}%"></span></span> ${p.done}/${p.total}
(${b.counts.succeeded} succeeded, ${b.counts.failed} failed, ${b.counts.cancelled} cancelled${b.counts.expired ? `, ${b.counts.expired} expired` : ""})${eta > 0 ? ` · ETA ${esc(formatDuration(eta))}` : ""}</p>
<p>model ${esc(b.spec.modelVersion)} · sampler ${esc(b.spec.sampler)} (${b.spec.steps} steps) · guidance ${esc(b.spec.guidance)} · ${b.spec.numImages} images per user · seed ${b.spec.seed}</p>
${evaluation ? `<p id="evaluation">Evaluation (${esc(evaluation.verifier)} verifier): T = ${evaluation.statistic.toFixed(3)}, p = ${evaluation.p.toFixed(4)}, own − others = ${evaluation.effect.toFixed(3)} · <a href="${batchHref(b)}/report">full report</a></p>` : b.state === "completed" ? `<p id="evaluation">No evaluation report yet: <code>rebeca eval ${esc(b.batchId)} --upload</code></p>` : ""}
<h2>Users</h2>
<table id="users"><tr><th>position</th><th>user</th><th>images</th><th>error</th></tr>
${rows || `<tr><td colspan="4">${b.state === "completed" ? "no users" : "users are listed when the batch completes"}</td></tr>`}
</table>${more ? "<p>Only the first users are listed.</p>" : ""}`,
    who,
    b.state === "running" || b.state === "receiving" ? 5 : undefined,
  );
}

export function galleryPage(who: Principal, b: BatchRecord, position: number, userId: string, images: number): string {
  const imgs = Array.from(
    { length: images },
    (_, i) => `<img src="/objects/${seg(b.tenant)}/${seg(b.batchId)}/${position}/${i}.png" alt="image ${i} for ${esc(userId)}">`,
  ).join("");
  return layout(
    `${userId} · ${b.batchId}`,
    `<h1>${esc(userId)}</h1>
<p>Generated for position ${position} of <a href="${batchHref(b)}">${esc(b.batchId)}</a> · model ${esc(b.spec.modelVersion)} · ${esc(b.spec.sampler)} · g=${esc(b.spec.guidance)}</p>
<div class="gallery" id="gallery">${imgs}</div>`,
    who,
  );
}
