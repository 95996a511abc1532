#!/usr/bin/env node
/*
 * The main job on the embedded demo model: starts Redis, S3 and the services locally, generates
 * personalized images for demo users through the gRPC API (with signed callbacks), and writes an
 * HTML gallery of each user's liked items next to the images generated for them and, beside those,
 * the same generated embeddings rendered by the comparison version's decoder (by default demo-v2's
 * latent-diffusion decoder against demo-v1's autoencoder decoder).
 */
import { createHmac } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { encodePng } from "@rebeca/inference";
import { createJobClient } from "@rebeca/client";
import { loadComparisonDecoder } from "./compare-decoder.js";
import { renderGallery, type GalleryRow } from "./gallery.js";
import { parseNpy } from "@rebeca/eval";
import { oracleLikeProbability, type DemoUser } from "@rebeca/eval";
import { REPO_ROOT } from "./services.js";
import { startStack } from "./stack.js";
import { startWebhookReceiver } from "./webhook-receiver.js";

const USERS = Number(process.env.DEMO_USERS ?? 12);
const IMAGES = Number(process.env.DEMO_IMAGES ?? 8);
const VERSION = process.env.DEMO_MODEL_VERSION ?? "demo-v2";
/** Whose decoder renders the comparison column ("" for none). */
const COMPARE = process.env.DEMO_COMPARE_VERSION ?? (VERSION === "demo-v1" ? "" : "demo-v1");
const OUT = process.env.DEMO_OUT ?? join(REPO_ROOT, "out", "demo");

async function main() {
  const world = join(REPO_ROOT, "models", VERSION, "world");
  const demoUsers = (JSON.parse(await readFile(join(world, "users.json"), "utf8")) as { users: DemoUser[] }).users;
  const modelUsers = new Set((await readFile(join(REPO_ROOT, "models", VERSION, "user_ids.txt"), "utf8")).split("\n").filter(Boolean));
  const users = demoUsers.filter((u) => modelUsers.has(u.id)).slice(0, USERS);
  const itemIds = (await readFile(join(world, "item_ids.txt"), "utf8")).split("\n").filter(Boolean);
  const itemIndex = new Map(itemIds.map((id, i) => [id, i]));
  const pixels = parseNpy(new Uint8Array(await readFile(join(world, "item_pixels.npy"))));
  const liked = new Map<string, number[]>();
  for (const line of (await readFile(join(world, "ratings.csv"), "utf8")).split("\n").slice(1)) {
    const [user, item, like] = line.split(",");
    if (like?.trim() === "1" && user && item) liked.set(user, [...(liked.get(user) ?? []), itemIndex.get(item)!]);
  }

  await rm(OUT, { recursive: true, force: true });
  await mkdir(join(OUT, "images"), { recursive: true });
  console.log(`==> starting redis-server, s3rver and the services (logs stay quiet unless something fails)`);
  const receiver = await startWebhookReceiver();
  const stack = await startStack({ tenants: ["demo"], s3Dir: join(OUT, "s3") });
  const tenant = stack.tenants.demo!;
  const client = createJobClient(stack.grpcAddress, tenant.apiKey);
  const s3 = new S3Client({
    endpoint: stack.s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  try {
    const started = Date.now();
    console.log(`==> CreateJob for ${users.length} users × ${IMAGES} images (model ${VERSION}) over gRPC at ${stack.grpcAddress}`);
    const jobs = await Promise.all(
      users.map(
        async (u, i) =>
          (
            await client.createJob({
              requestId: `demo-${u.id}`,
              userId: u.id,
              numImages: IMAGES,
              seed: 1000 + i,
              modelVersion: VERSION,
              labels: { run: "demo" },
              callbackUrl: receiver.url,
            })
          ).job!,
      ),
    );
    await receiver.until((all) => new Set(all.map((r) => String(r.headers["webhook-id"]))).size >= jobs.length, 300_000);
    const seconds = (Date.now() - started) / 1000;
    const verified = receiver.received.filter((r) => verifySignature(tenant.webhookSecret, r.headers, r.body)).length;

    const finished = await Promise.all(jobs.map(async (j) => (await client.getJob(j.jobId)).job!));
    const embeddings = new Map<string, Float32Array>();
    for (const job of finished) {
      if (job.outputs.length === 0) throw new Error(`job ${job.jobId} for ${job.userId} ended in state ${job.state}: ${job.error?.message}`);
      const bytes = await getObject(s3, job.outputs[0]!.embeddingUri);
      embeddings.set(job.userId, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    }
    const dim = 64;
    const compare = COMPARE ? await loadComparisonDecoder(join(REPO_ROOT, "models"), COMPARE) : undefined;
    const rows: GalleryRow[] = [];
    for (const [u, user] of users.entries()) {
      const job = finished[u]!;
      const generated: string[] = [];
      for (const out of job.outputs) {
        const png = await getObject(s3, out.uri);
        const file = join("images", `${user.id}-${out.index}.png`);
        await writeFile(join(OUT, file), png);
        generated.push(file);
      }
      const emb = embeddings.get(user.id)!;
      const compared: string[] = [];
      if (compare) {
        const pngs = await compare.render(
          emb,
          emb.length / dim,
          Array.from({ length: emb.length / dim }, (_, i) => 1000 * (u + 1) + i),
        );
        for (const [i, png] of pngs.entries()) {
          const file = join("images", `${user.id}-${COMPARE}-${i}.png`);
          await writeFile(join(OUT, file), png);
          compared.push(file);
        }
      }
      const likedImages = (liked.get(user.id) ?? []).slice(0, IMAGES).map((item) => {
        const file = join("images", `${user.id}-liked-${itemIds[item]}.png`);
        const gray = Float32Array.from(pixels.data.subarray(item * 784, (item + 1) * 784), (v) => v / 255);
        void writeFile(join(OUT, file), encodePng({ pixels: gray, channels: 1, height: 28, width: 28 }));
        return file;
      });
      const score = (emb: Float32Array) => {
        let total = 0;
        for (let i = 0; i < emb.length / dim; i++) total += oracleLikeProbability(user, emb.subarray(i * dim, (i + 1) * dim));
        return total / (emb.length / dim);
      };
      const others = users.filter((o) => o.id !== user.id).map((o) => score(embeddings.get(o.id)!));
      rows.push({
        userId: user.id,
        taste: user.class ?? "",
        liked: likedImages,
        generated,
        ...(compare ? { compared } : {}),
        jobId: job.jobId,
        ownScore: score(embeddings.get(user.id)!),
        othersScore: others.reduce((a, b) => a + b, 0) / others.length,
      });
    }
    const own = rows.reduce((a, r) => a + r.ownScore, 0) / rows.length;
    const other = rows.reduce((a, r) => a + r.othersScore, 0) / rows.length;
    const summary = [
      `${finished.length} jobs, ${finished.length * IMAGES} images in ${seconds.toFixed(1)} s through gateway → prior → decoder → S3 (${stack.s3.endpoint}, bucket ${stack.s3.bucket})`,
      `${receiver.received.length} signed callbacks received, ${verified} signatures verified`,
      `oracle P(like) of generated images: ${own.toFixed(3)} for their own user vs ${other.toFixed(3)} for other users`,
    ];
    const labels = { generated: `generated for them (${VERSION}, served)`, ...(compare ? { compared: `same embeddings, ${COMPARE}'s decoder` } : {}) };
    await writeFile(join(OUT, "index.html"), renderGallery(`Rebeca demo — ${VERSION}`, summary, rows, labels));
    console.log(summary.map((s) => `    ${s}`).join("\n"));
    console.log(`==> gallery: ${join(OUT, "index.html")}`);
    console.log(`    images:  ${join(OUT, "images")}/ (and in S3 under s3://${stack.s3.bucket}/tenants/demo/jobs/)`);
  } finally {
    client.close();
    await stack.stop();
    await receiver.close();
  }
}

async function getObject(s3: S3Client, uri: string): Promise<Uint8Array> {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToByteArray();
}

/** Standard Webhooks v1 check, written out so the demo shows what a receiver does. */
function verifySignature(secret: string, headers: Record<string, unknown>, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest("base64");
  return String(headers["webhook-signature"]).split(" ").includes(`v1,${expected}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
