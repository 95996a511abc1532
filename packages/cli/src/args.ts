import { SAMPLERS, SPACINGS } from "@rebeca/contracts";
/** A parsed command line: the command, its positional arguments and its flags. */
export interface Command {
  name: string;
  positional: string[];
  flags: Map<string, string[]>;
}

/** `positional: -1` = one or more. */
const COMMANDS: Record<string, { positional: number; flags: string[]; booleans?: string[] }> = {
  submit: {
    positional: 0,
    flags: ["file", "manifest", "request-id", "images", "model", "seed", "label", "callback", "guidance", "steps", "sampler", "spacing"],
    booleans: ["no-watch"],
  },
  eval: { positional: -1, flags: ["out", "models", "verifier", "permutations", "label"], booleans: ["upload"] },
  watch: { positional: 1, flags: [] },
  results: { positional: 1, flags: ["out"] },
  batches: { positional: 0, flags: ["limit"] },
  backlog: { positional: 0, flags: [] },
  models: { positional: -1, flags: ["version", "weight", "reason"] },
  usage: { positional: 0, flags: ["from", "to"] },
};

/** Options every command that talks to the gateway takes: TLS to it. */
const TLS_FLAGS = ["ca", "cert", "key"];
const TLS_BOOLEANS = ["tls"];

export const USAGE = `usage: rebeca <command> [options]

  submit  --file ids.txt | --manifest s3://bucket/tenants/<t>/ids.txt
          --request-id ID [--images N] [--model V] [--seed S] [--guidance G] [--steps S]
          [--sampler ddpm|ddim|dpmpp_2m|dpmpp_2m_sde] [--spacing linspace|leading|trailing]
          [--label k=v ...] [--callback URL] [--no-watch]
                              stream user ids (one per line) as a batch, then show its progress
  watch   BATCH_ID            progress bar until the batch finishes
  results BATCH_ID [--out F]  the result manifest (JSON Lines) to F or stdout
  batches [--limit N]         the tenant's batches, newest first
  eval    BATCH_ID [BATCH_ID ...] [--out DIR] [--models DIR] [--verifier oracle|learned]
          [--permutations B] [--label NAME ...] [--upload]
                              score finished batches as the paper does (re-encode, verifier,
                              permutation test, precision/recall@k); several batches are compared
                              side by side (samplers, guidance). Writes DIR/report.json and
                              DIR/report.html; --upload also stores them beside each batch's
                              manifest (the console shows them)
  backlog                     queue backlog per stage and tenant (needs REDIS_URL, QUEUE_PREFIX)
  usage   [--from DAY] [--to DAY]
                              the tenant's usage per UTC day (YYYY-MM-DD; default the last 30
                              days): images, embeddings, prior and decoder seconds, bytes stored
  models publish DIR [--version V]
                              publish a model directory to the registry (needs S3_BUCKET,
                              REDIS_URL, QUEUE_PREFIX, REGISTRY_PREFIX); services load it without restart
  models list                 versions the gateway serves (and those it refused)
  models status               the tenant's traffic policy and recent model.* events
  models canary VERSION --weight PERCENT [--reason R]
                              send PERCENT of the tenant's users (stable per user) to VERSION
  models promote [VERSION] [--reason R]
                              make the candidate (or VERSION) stable for every user
  models rollback [--reason R]
                              send no user to the candidate any more

TLS (every command that calls the gateway): --tls, or --ca FILE (PEM CA bundle; implies --tls),
          and for mutual TLS --cert FILE --key FILE (client certificate); or the variables
          REBECA_TLS=1, REBECA_CA_FILE, REBECA_CERT_FILE, REBECA_KEY_FILE

environment: REBECA_ADDRESS (host:port, default localhost:50051), REBECA_API_KEY;
             S3_ENDPOINT, S3_REGION and AWS credentials for results and eval; MODELS_DIR for
             eval (default ./models); REDIS_URL for backlog`;

export class UsageError extends Error {}

/** Parses argv (without node and script); throws UsageError naming the problem. */
export function parseArgs(argv: string[]): Command {
  const [name, ...rest] = argv;
  const spec = name ? COMMANDS[name] : undefined;
  if (!name || !spec) throw new UsageError(name ? `unknown command "${name}"` : "no command");
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const flag = arg.slice(2);
    if (spec.booleans?.includes(flag) || TLS_BOOLEANS.includes(flag)) {
      flags.set(flag, ["true"]);
      continue;
    }
    if (!spec.flags.includes(flag) && !TLS_FLAGS.includes(flag)) throw new UsageError(`${name}: unknown option --${flag}`);
    const value = rest[++i];
    if (value === undefined) throw new UsageError(`${name}: --${flag} needs a value`);
    flags.set(flag, [...(flags.get(flag) ?? []), value]);
  }
  if (spec.positional === -1) {
    if (positional.length === 0) throw new UsageError(`${name}: expected at least one argument`);
  } else if (positional.length !== spec.positional) throw new UsageError(`${name}: expected ${spec.positional} argument(s), got ${positional.length}`);
  if (name === "submit") {
    if (flags.has("file") === flags.has("manifest")) throw new UsageError("submit: give exactly one of --file or --manifest");
    if (!flags.has("request-id")) throw new UsageError("submit: --request-id is required (it makes a retry safe)");
    const sampler = flags.get("sampler")?.at(-1);
    if (sampler !== undefined && !(SAMPLERS as readonly string[]).includes(sampler))
      throw new UsageError(`submit: --sampler must be one of ${SAMPLERS.join(", ")}, got "${sampler}"`);
    const spacing = flags.get("spacing")?.at(-1);
    if (spacing !== undefined && !(SPACINGS as readonly string[]).includes(spacing))
      throw new UsageError(`submit: --spacing must be one of ${SPACINGS.join(", ")}, got "${spacing}"`);
  }
  if (name === "eval") {
    const v = flags.get("verifier")?.at(-1);
    if (v !== undefined && v !== "oracle" && v !== "learned") throw new UsageError(`eval: --verifier must be oracle or learned, got "${v}"`);
    if ((flags.get("label")?.length ?? positional.length) !== positional.length) throw new UsageError("eval: give one --label per batch or none");
  }
  return { name, positional, flags };
}

/** A flag's last value as an integer, or the default; throws UsageError when not an integer. */
export function intFlag(cmd: Command, flag: string, fallback: number): number {
  const raw = cmd.flags.get(flag)?.at(-1);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be an integer, got "${raw}"`);
  return n;
}

/** `--label k=v` flags as a map. */
export function labels(cmd: Command): Record<string, string> {
  return Object.fromEntries(
    (cmd.flags.get("label") ?? []).map((kv) => {
      const at = kv.indexOf("=");
      if (at < 1) throw new UsageError(`--label must be key=value, got "${kv}"`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
}
