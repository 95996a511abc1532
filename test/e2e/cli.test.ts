import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);

describe("rebeca CLI", () => {
  let stack: Stack;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, ...args], { env, timeout: 120_000 });

  beforeAll(async () => {
    stack = await startStack({ env: { gateway: { SHARD_SIZE: "16" } } });
    dir = await mkdtemp(join(tmpdir(), "rebeca-cli-"));
    env = {
      ...process.env,
      REBECA_ADDRESS: stack.grpcAddress,
      REBECA_API_KEY: stack.tenants.acme!.apiKey,
      S3_ENDPOINT: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      REDIS_URL: stack.redis.url,
      QUEUE_PREFIX: stack.prefix,
    };
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("submits a batch from a file, watches it to the end and fetches its result manifest", async () => {
    const ids = modelUserIds().slice(0, 40);
    await writeFile(join(dir, "ids.txt"), ids.join("\n") + "\n");
    const submitted = await cli("submit", "--file", join(dir, "ids.txt"), "--request-id", "cli-1", "--images", "2", "--label", "via=cli");
    const batchId = submitted.stdout.trim();
    expect(batchId).toMatch(/^batch_[0-9a-z]{26}$/);
    expect(submitted.stderr).toContain("40/40 100.0%");

    await cli("results", batchId, "--out", join(dir, "results.jsonl"));
    const lines = (await readFile(join(dir, "results.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { user_id: string; images: unknown[] });
    expect(lines.map((l) => l.user_id)).toEqual(ids);
    expect(lines.every((l) => l.images.length === 2)).toBe(true);

    const listed = await cli("batches");
    expect(listed.stdout).toContain(batchId);
    expect(listed.stdout).toContain("40/40");
  });

  it("shows queue backlogs per stage, work class and tenant", async () => {
    const { stdout } = await cli("backlog");
    expect(stdout.split("\n")[0]).toBe("stage\tclass\ttenant\ttotal\twait\tprioritized\tactive\tdelayed");
    expect(stdout).toMatch(/^prior\tinteractive\tacme\t\d+/m);
    expect(stdout).toMatch(/^prior\tbatch\tacme\t\d+/m);
    expect(stdout).toMatch(/^decode\tbatch\tglobex\t\d+/m);
  });

  it("explains bad usage with exit code 2", async () => {
    await expect(cli("submit", "--file", "x")).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining("--request-id is required") });
  });
});
