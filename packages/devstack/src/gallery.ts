/**
 * One row of the gallery: a user's liked catalogue items beside the images generated for them, and
 * the same generated embeddings rendered by another decoder (the comparison column), when there is one.
 */
export interface GalleryRow {
  userId: string;
  taste: string;
  liked: string[];
  generated: string[];
  compared?: string[];
  ownScore: number;
  othersScore: number;
  jobId: string;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Column headings: what rendered the generated images, and what rendered the comparison column. */
export interface GalleryLabels {
  generated: string;
  compared?: string;
}

/** A self-contained HTML page (images as data URIs or relative paths). */
export function renderGallery(title: string, summary: string[], rows: GalleryRow[], labels: GalleryLabels = { generated: "generated for them" }): string {
  const img = (kind: string) => (src: string) => `<img class="${kind}" src="${escape(src)}" width="84" height="84" alt="">`;
  const column = (kind: string, heading: string, srcs: string[]) => `<div class="${kind}"><h3>${escape(heading)}</h3>${srcs.map(img(kind)).join("")}</div>`;
  const body = rows
    .map(
      (r) => `<section data-user="${escape(r.userId)}">
  <h2>${escape(r.userId)} <small>taste: ${escape(r.taste)} · job ${escape(r.jobId)} · oracle P(like): own ${r.ownScore.toFixed(2)} vs others' images ${r.othersScore.toFixed(2)}</small></h2>
  <div class="pair">${column("liked", "liked", r.liked)}${column("generated", labels.generated, r.generated)}${r.compared && labels.compared ? column("compared", labels.compared, r.compared) : ""}</div>
</section>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2rem; background: #fafafa; color: #222; }
section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .5rem 1rem; margin: 1rem 0; }
h2 { font-size: 1rem; } h2 small { color: #666; font-weight: normal; } h3 { font-size: .8rem; color: #666; margin: .2rem 0; }
.pair { display: flex; gap: 2rem; flex-wrap: wrap; } img { image-rendering: pixelated; border: 1px solid #eee; margin: 2px; background: #000; }
</style></head><body>
<h1>${escape(title)}</h1>
<ul>${summary.map((s) => `<li>${escape(s)}</li>`).join("")}</ul>
${body}
</body></html>
`;
}
