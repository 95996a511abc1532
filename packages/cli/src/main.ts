#!/usr/bin/env node
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { createBatchClient, createDataClient, tlsFromFiles, type BatchClient, type ClientOptions } from "@rebeca/client";
import { BatchState, type Batch } from "@rebeca/contracts/grpc-batches";
import type { SamplerName, SpacingName } from "@rebeca/contracts";
import { toProtoSampler, toProtoSpacing } from "@rebeca/contracts/sampler-enums";
import { redisKeys, STAGES, stageQueue, WORK_CLASSES } from "@rebeca/contracts";
import { backlogOf, openQueue, redisTargetOf } from "@rebeca/platform";
import { intFlag, labels, parseArgs, USAGE, UsageError, type Command } from "./args.js";
import { formatEta, renderProgress } from "./progress.js";
import { runEval } from "./eval.js";
import { runModels } from "./models.js";

const CHUNK = 10_000;
const FINISHED = new Set([BatchState.BATCH_STATE_COMPLETED, BatchState.BATCH_STATE_CANCELLED, BatchState.BATCH_STATE_FAILED, BatchState.BATCH_STATE_EXPIRED]);

/** Rewrites one terminal line (or prints lines when output is not a terminal). */
function status(line: string, final = false) {
  if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
  else if (final) process.stderr.write(`${line}\n`);
}

/** Reads ids one per line and yields CreateBatch chunks; a final (possibly empty) chunk is marked last. */
async function* fileChunks(path: string, onSent: (n: number) => void) {
  let chunk: string[] = [];
  let offset = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    const id = line.trim();
    if (!id) continue;
    chunk.push(id);
    if (chunk.length === CHUNK) {
      yield { offset, userIds: chunk, last: false };
      offset += chunk.length;
      onSent(offset);
      chunk = [];
    }
  }
  yield { offset, userIds: chunk, last: true };
  onSent(offset + chunk.length);
}

async function watch(client: BatchClient, batchId: string): Promise<Batch> {
  for (;;) {
    const b = await client.getBatch(batchId);
    const c = b.counts!;
    const done = Number(c.succeeded) + Number(c.failed) + Number(c.cancelled) + Number(c.expired);
    const finished = FINISHED.has(b.state) && b.endTime !== "";
    status(
      renderProgress(
        "users",
        done,
        Number(c.total),
        `ok ${c.succeeded} failed ${c.failed}${c.cancelled ? ` cancelled ${c.cancelled}` : ""}${c.expired ? ` expired ${c.expired}` : ""} ${formatEta(b.etaSeconds) && `eta ${formatEta(b.etaSeconds)}`}`,
      ),
      finished,
    );
    if (finished) return b;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function submit(cmd: Command, client: BatchClient) {
  const flag = (name: string) => cmd.flags.get(name)?.at(-1);
  const params = {
    requestId: flag("request-id")!,
    numImages: intFlag(cmd, "images", 1),
    modelVersion: flag("model") ?? "",
    ...(flag("seed") !== undefined ? { seed: intFlag(cmd, "seed", 0) } : {}),
    ...(flag("guidance") !== undefined ? { guidance: Number(flag("guidance")) } : {}),
    ...(flag("steps") !== undefined ? { steps: intFlag(cmd, "steps", 50) } : {}),
    ...(flag("sampler") !== undefined ? { sampler: toProtoSampler(flag("sampler") as SamplerName) } : {}),
    ...(flag("spacing") !== undefined ? { spacing: toProtoSpacing(flag("spacing") as SpacingName) } : {}),
    labels: labels(cmd),
    callbackUrl: flag("callback") ?? "",
  };
  let batch: Batch;
  if (flag("manifest")) batch = await client.createBatchFromManifest(params, flag("manifest")!);
  else {
    // A retry under the same request id resends the file; the gateway skips what it stored.
    for (let attempt = 1; ; attempt++) {
      try {
        batch = await client.createBatch(
          params,
          fileChunks(flag("file")!, (n) => status(`sent ${n} user ids`)),
        );
        break;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (attempt >= 5 || (code !== 14 && code !== 1)) throw err; // UNAVAILABLE or CANCELLED: retry
        status(`stream broke (${(err as Error).message}); resending under ${params.requestId}`, true);
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }
  status(`batch ${batch.batchId}: ${batch.counts!.total} users in ${batch.shardsTotal} shards`, true);
  console.log(batch.batchId);
  if (!cmd.flags.has("no-watch")) await watch(client, batch.batchId);
}

async function results(cmd: Command, client: BatchClient) {
  const b = await client.getBatch(cmd.positional[0]!);
  if (!b.resultManifestUri) throw new Error(`batch ${b.batchId} has no result manifest yet (state ${BatchState[b.state]})`);
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(b.resultManifestUri)!;
  const s3 = s3FromEnv();
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const target = cmd.flags.get("out")?.at(-1);
  const sink = target ? createWriteStream(target) : process.stdout;
  await new Promise<void>((resolve, reject) => {
    const body = out.Body as NodeJS.ReadableStream;
    body.on("error", reject);
    body.on("end", () => resolve());
    body.pipe(sink, { end: Boolean(target) });
  });
  if (target) status(`wrote ${b.resultManifestUri} to ${target}`, true);
}

function s3FromEnv(): S3Client {
  return new S3Client({
    region: process.env.S3_REGION ?? "us-east-1",
    ...(process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT, forcePathStyle: true } : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

async function backlog() {
  const prefix = process.env.QUEUE_PREFIX ?? "{rebeca}";
  // Any REDIS_URL form the services take (TLS, Sentinel).
  const target = redisTargetOf(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const options = { ...target.options, maxRetriesPerRequest: 1 };
  const redis = target.url ? new Redis(target.url, options) : new Redis(options);
  try {
    const tenants = (await redis.smembers(redisKeys(prefix).tenants())).sort();
    console.log(["stage", "class", "tenant", "total", "wait", "prioritized", "active", "delayed"].join("\t"));
    for (const stage of STAGES) {
      for (const workClass of WORK_CLASSES) {
        for (const tenant of tenants) {
          const queue = openQueue(stageQueue(stage, tenant, workClass), redis, prefix);
          const b = await backlogOf(queue);
          console.log(
            [stage, workClass, tenant, b.total, b.byState.wait ?? 0, b.byState.prioritized ?? 0, b.byState.active ?? 0, b.byState.delayed ?? 0].join("\t"),
          );
          await queue.close();
        }
      }
    }
  } finally {
    redis.disconnect();
  }
}

/** TLS from the flags, else from REBECA_TLS / REBECA_CA_FILE / REBECA_CERT_FILE / REBECA_KEY_FILE. */
function clientOptions(cmd: Command): ClientOptions {
  const pick = (flag: string, variable: string) => cmd.flags.get(flag)?.at(-1) ?? (process.env[variable] || undefined);
  const caFile = pick("ca", "REBECA_CA_FILE");
  const certFile = pick("cert", "REBECA_CERT_FILE");
  const keyFile = pick("key", "REBECA_KEY_FILE");
  const on = cmd.flags.has("tls") || process.env.REBECA_TLS === "1" || caFile !== undefined || certFile !== undefined;
  if (!on) return {};
  try {
    return { tls: tlsFromFiles({ ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) }) };
  } catch (err) {
    throw new UsageError(`TLS: ${(err as Error).message}`);
  }
}

/** The tenant's usage per day as a table (tab-separated, one row per day). */
async function usage(key: string, from: string, to: string, options: ClientOptions) {
  const client = createDataClient(process.env.REBECA_ADDRESS ?? "localhost:50051", key, options);
  try {
    const { days } = await client.getUsage(from, to);
    console.log(["day", "images", "embeddings", "prior_seconds", "decoder_seconds", "bytes_stored"].join("\t"));
    for (const d of days) console.log([d.day, d.images, d.embeddings, d.priorSeconds.toFixed(3), d.decoderSeconds.toFixed(3), d.bytesStored].join("\t"));
  } finally {
    client.close();
  }
}

async function main(argv: string[]) {
  const cmd = parseArgs(argv);
  if (cmd.name === "backlog") return backlog();
  if (cmd.name === "models") return runModels(cmd, process.env.REBECA_ADDRESS ?? "localhost:50051", process.env.REBECA_API_KEY);
  const key = process.env.REBECA_API_KEY;
  if (!key) throw new UsageError("set REBECA_API_KEY");
  if (cmd.name === "usage") return usage(key, cmd.flags.get("from")?.at(-1) ?? "", cmd.flags.get("to")?.at(-1) ?? "", clientOptions(cmd));
  const client = createBatchClient(process.env.REBECA_ADDRESS ?? "localhost:50051", key, clientOptions(cmd));
  try {
    if (cmd.name === "submit") await submit(cmd, client);
    else if (cmd.name === "watch") await watch(client, cmd.positional[0]!);
    else if (cmd.name === "results") await results(cmd, client);
    else if (cmd.name === "eval") {
      const verifier = cmd.flags.get("verifier")?.at(-1) as "oracle" | "learned" | undefined;
      await runEval(
        {
          batchIds: cmd.positional,
          labels: cmd.flags.get("label") ?? [],
          modelsDir: cmd.flags.get("models")?.at(-1) ?? process.env.MODELS_DIR ?? "models",
          outDir: cmd.flags.get("out")?.at(-1) ?? "eval-report",
          ...(verifier ? { verifier } : {}),
          permutations: intFlag(cmd, "permutations", 1000),
          upload: cmd.flags.has("upload"),
          log: (line) => status(line, true),
        },
        client,
        s3FromEnv(),
      );
    } else if (cmd.name === "batches") {
      for (const b of (await client.listBatches(intFlag(cmd, "limit", 20))).batches) {
        console.log([b.batchId, BatchState[b.state], `${b.counts!.succeeded}/${b.counts!.total}`, b.createTime].join("\t"));
      }
    }
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(err instanceof UsageError ? `${err.message}\n\n${USAGE}` : `rebeca: ${err.message}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
