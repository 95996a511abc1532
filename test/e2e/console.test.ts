/*
 * The web console in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) signs in, finds a batch, opens a user's gallery and the evaluation report, and
 * takes a screenshot that must not be blank; the admin sees bull-board's queue view. Unauthenticated
 * and cross-tenant access is refused.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, REPO_ROOT, startStack, type BatchClient, type Stack } from "@rebeca/devstack";
import { untilBatchCompleted } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Share of pixels that differ from the most common colour, and how many colours there are. */
function contentOf(png: Buffer): { nonBackground: number; colours: number } {
  const img = PNG.sync.read(png);
  const counts = new Map<number, number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const c = (img.data[i]! << 16) | (img.data[i + 1]! << 8) | img.data[i + 2]!;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const total = img.width * img.height;
  return { nonBackground: 1 - Math.max(...counts.values()) / total, colours: counts.size };
}

describe("web console (gateway admin port)", () => {
  let stack: Stack;
  let batches: BatchClient;
  let browser: Browser;
  let batchId: string;
  const ids = modelUserIds().slice(0, 12);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run packages/devstack/bin/setup.sh (installs Debian's chromium)`);
    stack = await startStack({ services: ["gateway", "prior-worker", "decoder-worker"] });
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    batchId = (await batches.createBatch({ requestId: "console-1", numImages: 3, seed: 5, modelVersion: "demo-v1" }, chunksOf(ids, 12))).batchId;
    await untilBatchCompleted(batches, batchId);
    // An evaluation report beside the manifest, as `rebeca eval --upload` leaves it.
    const env = {
      ...process.env,
      REBECA_ADDRESS: stack.grpcAddress,
      REBECA_API_KEY: stack.tenants.acme!.apiKey,
      S3_ENDPOINT: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      MODELS_DIR: `${REPO_ROOT}models`,
    };
    await run(
      process.execPath,
      [
        `${REPO_ROOT}packages/cli/dist/main.js`,
        "eval",
        batchId,
        "--permutations",
        "200",
        "--upload",
        "--out",
        await mkdtemp(join(tmpdir(), "rebeca-console-")),
      ],
      { env, timeout: 120_000 },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  });
  afterAll(async () => {
    await browser?.close();
    batches?.close();
    await stack?.stop();
  });

  it("refuses unauthenticated and wrong-key access", async () => {
    const url = stack.consoleUrl;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const path of [
      "/batches",
      `/batches/acme/${batchId}`,
      `/batches/acme/${batchId}/report`,
      `/objects/acme/${batchId}/0/0.png`,
      "/queues/",
      "/queues/api/queues",
    ]) {
      const api = await fetch(`${url}${path}`, { redirect: "manual", headers: { accept: "application/json" } });
      expect(api.status, path).toBe(401);
      const page = await fetch(`${url}${path}`, { redirect: "manual", headers: { accept: "text/html" } });
      expect(page.status, path).toBe(303);
      expect(page.headers.get("location")).toBe("/login");
      const forged = await fetch(`${url}${path}`, { redirect: "manual", headers: { cookie: `rebeca_console=${"A".repeat(43)}`, accept: "application/json" } });
      expect(forged.status, path).toBe(401);
    }
    const wrong = await fetch(`${url}/login`, { method: "POST", body: new URLSearchParams({ key: "rk_acme_not-a-key" }), redirect: "manual" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
  });

  it("keeps tenants apart: another tenant's key sees neither the batch nor the queue view", async () => {
    const auth = { authorization: `Bearer ${stack.tenants.globex!.apiKey}` };
    const list = await fetch(`${stack.consoleUrl}/batches`, { headers: auth });
    expect(list.status).toBe(200);
    expect(await list.text()).not.toContain(batchId);
    expect((await fetch(`${stack.consoleUrl}/batches/acme/${batchId}`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${stack.consoleUrl}/objects/acme/${batchId}/0/0.png`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${stack.consoleUrl}/queues/`, { headers: auth })).status).toBe(403);
  });

  it("signs in in Chromium, finds the batch, opens a user's gallery and report, and screenshots a non-blank page", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${stack.consoleUrl}/batches`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("#key", stack.tenants.acme!.apiKey);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/batches$/);

    const row = page.locator(`tr[data-batch="${batchId}"]`);
    await expect(row.textContent()).resolves.toContain("completed");
    expect(await row.textContent()).toContain("12/12");
    await row.locator("a").first().click();
    await page.waitForURL(new RegExp(`/batches/acme/${batchId}$`));
    expect(await page.locator("#evaluation").textContent()).toMatch(/T = 0\.\d{3}, p = 0\.\d{4}/);
    expect(await page.locator("#users tr").count()).toBe(13);

    await page.locator("#users a", { hasText: ids[2]! }).click();
    await page.waitForURL(new RegExp(`/batches/acme/${batchId}/users/2$`));
    expect(await page.locator("h1").textContent()).toBe(ids[2]);
    const images = page.locator("#gallery img");
    expect(await images.count()).toBe(3);
    // Every image has arrived and decoded.
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>("#gallery img")].every((i) => i.complete && i.naturalWidth === 28));
    const shot = await page.screenshot({ fullPage: true });
    const content = contentOf(shot);
    expect(content.nonBackground).toBeGreaterThan(0.05);
    expect(content.colours).toBeGreaterThan(20);

    await page.goto(`${stack.consoleUrl}/batches/acme/${batchId}/report`);
    expect(await page.locator('svg[aria-label="null distribution"]').count()).toBe(1);
    await context.close();
  });

  it("shows the admin bull-board's queue view of every tenant's stage queues", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.consoleUrl}/login`);
    await page.fill("#key", stack.adminKey);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/batches$/);
    expect(await page.locator(`tr[data-batch="${batchId}"]`).count()).toBe(1);
    await page.goto(`${stack.consoleUrl}/queues/`);
    await page.getByText("prior.acme").first().waitFor({ timeout: 30_000 });
    await page.getByText("decode.globex").first().waitFor({ timeout: 30_000 });
    const content = contentOf(await page.screenshot());
    expect(content.nonBackground).toBeGreaterThan(0.02);
    // Signing out ends the session.
    await page.goto(`${stack.consoleUrl}/batches`);
    await page.click("nav button[type=submit]");
    await page.waitForURL(/\/login$/);
    await page.goto(`${stack.consoleUrl}/batches`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await context.close();
  });
});
