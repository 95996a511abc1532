/*
 * The demo gallery in a real browser: `npm run demo`'s program (small: 3 users × 3 images) serves
 * demo-v2 through the whole pipeline and renders the same embeddings with demo-v1's autoencoder
 * decoder beside them; headless Chromium (Debian's `chromium`, driven by playwright-core) opens the
 * page, every image must have loaded, and screenshots of each column must show images; each
 * diffusion image differs from the autoencoder's image of the same embedding.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { chromium, type Browser } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "@rebeca/devstack";

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const USERS = 3;
const IMAGES = 3;

/** Share of pixels that differ from the most common colour, and how many colours there are. */
function contentOf(png: Buffer): { nonBackground: number; colours: number } {
  const img = PNG.sync.read(png);
  const counts = new Map<number, number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const c = (img.data[i]! << 16) | (img.data[i + 1]! << 8) | img.data[i + 2]!;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  return { nonBackground: 1 - Math.max(...counts.values()) / (img.width * img.height), colours: counts.size };
}

/** Grey values (0..255) of a PNG's first channel. */
function grey(path: string): number[] {
  const img = PNG.sync.read(readFileSync(path));
  return Array.from({ length: img.width * img.height }, (_, i) => img.data[4 * i]!);
}

/** Standard deviation of the grey values: a blank or flat image has ~0. */
function spread(v: number[]): number {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

function meanAbsDiff(a: number[], b: number[]): number {
  return a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
}

/** Mean absolute 4-neighbour Laplacian of a grey PNG (0..255 scale): edge energy, higher = sharper. */
function edgeEnergy(path: string): number {
  const img = PNG.sync.read(readFileSync(path));
  const at = (x: number, y: number) => img.data[4 * (y * img.width + x)]!;
  let sum = 0;
  for (let y = 1; y < img.height - 1; y++) {
    for (let x = 1; x < img.width - 1; x++) sum += Math.abs(4 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1));
  }
  return sum / ((img.width - 2) * (img.height - 2));
}

describe("demo gallery (demo-v2 served, demo-v1's decoder beside it)", () => {
  let out: string;
  let browser: Browser;
  let stdout: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run packages/devstack/bin/setup.sh (installs Debian's chromium)`);
    out = await mkdtemp(join(tmpdir(), "rebeca-demo-"));
    const env = { ...process.env, DEMO_USERS: String(USERS), DEMO_IMAGES: String(IMAGES), DEMO_OUT: out };
    ({ stdout } = await run(process.execPath, [`${REPO_ROOT}packages/devstack/dist/demo.js`], { env, timeout: 170_000 }));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  });
  afterAll(async () => {
    await browser?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("renders every user's liked items, the diffusion decoder's images and the autoencoder's side by side", async () => {
    expect(stdout).toContain(`${USERS} jobs, ${USERS * IMAGES} images`);
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    await page.goto(pathToFileURL(join(out, "index.html")).href);
    expect(await page.locator("h1").textContent()).toBe("Rebeca demo — demo-v2");
    expect(await page.locator("section").count()).toBe(USERS);
    for (const kind of ["generated", "compared"]) {
      expect(await page.locator(`section img.${kind}`).count(), kind).toBe(USERS * IMAGES);
    }
    expect(await page.locator("section").first().locator("div.compared h3").textContent()).toContain("demo-v1");
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>("section img")].every((i) => i.complete && i.naturalWidth === 28));

    const section = page.locator("section").first();
    const shots: Record<string, Buffer> = {};
    for (const kind of ["liked", "generated", "compared"]) {
      shots[kind] = await section.locator(`div.${kind}`).screenshot();
      const content = contentOf(shots[kind]);
      expect(content.nonBackground, kind).toBeGreaterThan(0.1);
      expect(content.colours, kind).toBeGreaterThan(20);
    }
    expect(shots["generated"]!.equals(shots["compared"]!)).toBe(false);
    await context.close();

    // The same embeddings, two decoders: every pair of images differs, and neither decoder draws blanks.
    // (Edge energy is printed, not asserted: the trained diffusion decoder is not measurably sharper yet —
    // docs/evaluation.md, "Decoder realism".)
    const files = (kind: string) =>
      [...readFileSync(join(out, "index.html"), "utf8").matchAll(new RegExp(`class="${kind}" src="([^"]+)"`, "g"))].map((m) => join(out, m[1]!));
    const diffusion = files("generated");
    const autoencoder = files("compared");
    expect(diffusion).toHaveLength(USERS * IMAGES);
    for (const [i, path] of diffusion.entries()) {
      const [a, b] = [grey(path), grey(autoencoder[i]!)];
      expect(spread(a), path).toBeGreaterThan(30);
      expect(spread(b), autoencoder[i]).toBeGreaterThan(30);
      expect(meanAbsDiff(a, b), `${path} vs ${autoencoder[i]}`).toBeGreaterThan(5);
    }
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    console.info(
      `edge energy (mean |Laplacian|, 0..255): diffusion ${mean(diffusion.map(edgeEnergy)).toFixed(1)}, autoencoder ${mean(autoencoder.map(edgeEnergy)).toFixed(1)}`,
    );
  });
});
