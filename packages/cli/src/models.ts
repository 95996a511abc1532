import { Redis } from "ioredis";
import { createModelClient } from "@rebeca/client";
import { publishVersionDir } from "@rebeca/registry";
import { createBlobStore, storageConfigSchema } from "@rebeca/storage";
import { UsageError, type Command } from "./args.js";

/** `rebeca models publish DIR [--version V]`: uploads a model directory to the registry (S3 + Redis pointer) and prints its entry. */
async function publish(cmd: Command): Promise<void> {
  const dir = cmd.positional[1];
  if (!dir) throw new UsageError("models publish: give the model directory");
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
  try {
    const blobs = await createBlobStore(storageConfigSchema.parse(process.env));
    const version = cmd.flags.get("version")?.at(-1);
    const r = await publishVersionDir(
      { blobs, redis, objectPrefix: process.env.REGISTRY_PREFIX ?? "registry", redisPrefix: process.env.QUEUE_PREFIX ?? "{rebeca}" },
      dir,
      { actor: "cli", ...(version ? { version } : {}) },
    );
    console.log(JSON.stringify({ ...r.published, created: r.created }));
  } finally {
    redis.disconnect();
  }
}

/** The `models` subcommands: publish (S3 + Redis), and list, status, canary, promote, rollback (ModelService over gRPC, as the API key's tenant). */
export async function runModels(cmd: Command, address: string, apiKey: string | undefined): Promise<void> {
  const sub = cmd.positional[0];
  if (sub === "publish") return publish(cmd);
  if (!apiKey) throw new UsageError("set REBECA_API_KEY");
  const client = createModelClient(address, apiKey);
  const reason = cmd.flags.get("reason")?.at(-1) ?? "";
  const show = (p: unknown) => console.log(JSON.stringify(p));
  try {
    if (sub === "list") {
      for (const v of (await client.listModels()).versions)
        console.log([v.version, v.source, v.publishTime || "-", v.refusedReason ? `REFUSED: ${v.refusedReason}` : "ok"].join("\t"));
    } else if (sub === "status") {
      show((await client.getTrafficPolicy()).policy);
      for (const e of (await client.listModelEvents(20)).events) console.log([e.time, e.type, e.version, e.actor, e.reason].join("\t"));
    } else if (sub === "canary") {
      const version = cmd.positional[1];
      const weight = Number(cmd.flags.get("weight")?.at(-1) ?? "");
      if (!version || !Number.isFinite(weight)) throw new UsageError("models canary: give VERSION and --weight PERCENT");
      show((await client.setCanary(version, weight, reason)).policy);
    } else if (sub === "promote") show((await client.promote(cmd.positional[1] ?? "", reason)).policy);
    else if (sub === "rollback") show(await client.rollback(reason));
    else throw new UsageError(`models: unknown subcommand "${sub ?? ""}"`);
  } finally {
    client.close();
  }
}
