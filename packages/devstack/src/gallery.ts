/** One row of the gallery: a user's liked catalogue items beside the images generated for them. */
export interface GalleryRow {
  userId: string;
  taste: string;
  liked: string[];
  generated: string[];
  ownScore: number;
  othersScore: number;
  jobId: string;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained HTML page (images as data URIs or relative paths). */
export function renderGallery(title: string, summary: string[], rows: GalleryRow[]): string {
  const img = (src: string) => `<img src="${escape(src)}" width="84" height="84" alt="">`;
  const body = rows
    .map(
      (r) => `<section>
  <h2>${escape(r.userId)} <small>taste: ${escape(r.taste)} · job ${escape(r.jobId)} · oracle P(like): own ${r.ownScore.toFixed(2)} vs others' images ${r.othersScore.toFixed(2)}</small></h2>
  <div class="pair"><div><h3>liked</h3>${r.liked.map(img).join("")}</div><div><h3>generated for them</h3>${r.generated.map(img).join("")}</div></div>
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
