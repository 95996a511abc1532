/** The console's usage page: per tenant, what it used each day (pure: rows in, HTML out). */
import type { UsageDay } from "@rebeca/userdata";
import type { Principal } from "./auth.js";
import { esc, layout } from "./pages.js";

const mb = (bytes: number) => (bytes / 1e6).toFixed(2);

export function usagePage(who: Principal, tenants: { tenant: string; days: UsageDay[] }[]): string {
  const sections = tenants.map(({ tenant, days }) => {
    const rows = [...days]
      .reverse()
      .map(
        (d) =>
          `<tr><td>${esc(d.day)}</td><td>${d.images}</td><td>${d.embeddings}</td><td>${d.priorSeconds.toFixed(1)}</td><td>${d.decoderSeconds.toFixed(1)}</td><td>${mb(d.bytesStored)}</td></tr>`,
      )
      .join("");
    const total = days.reduce((s, d) => s + d.images, 0);
    return `<h2>${esc(tenant)}</h2><p>${total} images in the last ${days.length} days</p>
<table><thead><tr><th>day (UTC)</th><th>images</th><th>embeddings</th><th>prior s</th><th>decoder s</th><th>stored MB</th></tr></thead><tbody>${rows}</tbody></table>`;
  });
  return layout("Usage", `<h1>Usage</h1>${sections.join("")}`, who);
}
