/**
 * `rebeca eval`: scores finished batches as the paper does and writes the JSON and HTML reports.
 * The scoring is @rebeca/eval's; this file only fetches (gateway, S3, models dir) and writes.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { BatchClient } from "@rebeca/client";
import { BatchState, type Batch } from "@rebeca/contracts/grpc-batches";
import { evalReportUri } from "@rebeca/contracts";
import { fromProtoSampler, fromProtoSpacing } from "@rebeca/contracts/sampler-enums";
import { buildReport, formatComparison, frontierTable, renderReportHtml, type EvalReport, type Galleries } from "@rebeca/eval";
import { evaluateServedBatch, loadDemoWorld, loadImageEncoder, parseResultManifest, type ServedBatch } from "@rebeca/eval/served";

export interface EvalOptions {
  batchIds: string[];
  labels?: string[];
  modelsDir: string;
  outDir: string;
  verifier?: "oracle" | "learned";
  permutations: number;
  upload: boolean;
  log: (line: string) => void;
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1]!, key: m[2]! };
}

export async function readS3(s3: S3Client, uri: string): Promise<Uint8Array> {
  const { bucket, key } = parseS3Uri(uri);
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToByteArray();
}

async function servedBatch(b: Batch, s3: S3Client, modelsDir: string): Promise<ServedBatch> {
  if (b.state !== BatchState.BATCH_STATE_COMPLETED || !b.resultManifestUri)
    throw new Error(`batch ${b.batchId} is ${BatchState[b.state]}; only a completed batch with a result manifest can be evaluated`);
  const p = b.parameters!;
  const model = JSON.parse(await readFile(join(modelsDir, p.modelVersion, "manifest.json"), "utf8")) as { schedule: { timesteps: number } };
  // A stored batch always names its sampler and spacing (the gateway fills the model's defaults).
  const sampler = fromProtoSampler(p.sampler) ?? "ddim";
  const ddpm = sampler === "ddpm";
  return {
    batchId: b.batchId,
    modelVersion: p.modelVersion,
    sampler,
    // DDPM visits every timestep; the stored steps apply to the other samplers.
    steps: ddpm ? model.schedule.timesteps : (p.steps ?? 0),
    spacing: ddpm ? "linspace" : (fromProtoSpacing(p.spacing) ?? "linspace"),
    guidance: p.guidance ?? 0,
    manifest: parseResultManifest(new TextDecoder().decode(await readS3(s3, b.resultManifestUri))),
  };
}

/** Evaluates the batches, writes DIR/report.{json,html} (and uploads them when asked). */
export async function runEval(o: EvalOptions, client: BatchClient, s3: S3Client): Promise<EvalReport> {
  const runs = [];
  const galleries: Galleries = {};
  const manifests: string[] = [];
  for (const [j, id] of o.batchIds.entries()) {
    const batch = await client.getBatch(id);
    const served = await servedBatch(batch, s3, o.modelsDir);
    const modelDir = join(o.modelsDir, served.modelVersion);
    const [world, encoder] = await Promise.all([loadDemoWorld(join(modelDir, "world")), loadImageEncoder(modelDir)]);
    const started = Date.now();
    const r = await evaluateServedBatch({
      batch: served,
      world,
      encoder,
      read: (uri) => readS3(s3, uri),
      permutations: o.permutations,
      ...(o.verifier ? { verifier: o.verifier } : {}),
      ...(o.labels?.[j] ? { label: o.labels[j] } : {}),
    });
    o.log(
      `${id}: ${r.run.users} users, ${r.run.items} images, ${r.run.verifier} verifier: T = ${r.run.statistic.toFixed(4)}, p = ${r.run.p.toFixed(4)}, effect = ${r.run.effect.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(1)} s: read ${r.seconds.read.toFixed(1)}, encode ${r.seconds.encode.toFixed(1)}, score ${r.seconds.score.toFixed(1)})`,
    );
    runs.push(r.run);
    galleries[id] = r.gallery;
    manifests.push(batch.resultManifestUri);
  }
  const report = buildReport(runs);
  const json = JSON.stringify(report, null, 1);
  const html = renderReportHtml(report, galleries);
  const out = resolve(o.outDir);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, "report.json"), json);
  await writeFile(join(out, "report.html"), html);
  o.log(`wrote ${join(out, "report.json")} and ${join(out, "report.html")}`);
  if (o.upload) {
    for (const m of manifests) {
      for (const [file, body, type] of [
        ["report.json", json, "application/json"],
        ["report.html", html, "text/html; charset=utf-8"],
      ] as const) {
        const { bucket, key } = parseS3Uri(evalReportUri(m, file));
        const bytes = Buffer.from(body);
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentType: type, ContentLength: bytes.byteLength }));
      }
      o.log(`uploaded ${evalReportUri(m, "report.html")}`);
    }
  }
  console.log(formatComparison(report.comparison));
  if (report.samplers) console.log(frontierTable(report.samplers, "samplers on the T–diversity frontier"));
  return report;
}
