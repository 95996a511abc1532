import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);

/** The bash block of docs/api.md's "HTTP/JSON" section: the walkthrough users copy. */
async function walkthrough(): Promise<string> {
  const doc = await readFile(`${REPO_ROOT}docs/api.md`, "utf8");
  const section = doc.slice(doc.indexOf("## HTTP/JSON"));
  return /```bash\n([\s\S]*?)```/.exec(section)![1]!;
}

/*
 * HTTP/JSON on a full stack, with nothing but curl (and jq): the documented walkthrough runs as
 * written, then the other shapes (client stream as JSON Lines, errors, auth, limits).
 */
describe("HTTP/JSON", () => {
  let stack: Stack;
  let key: string;
  beforeAll(async () => {
    // A 1 s keep-alive lets the walkthrough's `awk … exit` end curl soon after the last event.
    stack = await startStack({ env: { gateway: { SSE_KEEPALIVE_SECONDS: "1", MAX_MESSAGE_BYTES: "65536" } } });
    key = stack.tenants.acme!.apiKey;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** POST with the tenant's key; the answer's HTTP status and JSON body. */
  async function post(path: string, body: string, auth = true) {
    const res = await fetch(`${stack.httpUrl}${path}`, { method: "POST", body, headers: auth ? { authorization: `Bearer ${key}` } : {} });
    return { status: res.status, retryAfter: res.headers.get("retry-after"), json: (await res.json()) as Record<string, any> };
  }

  it("runs the docs/api.md walkthrough: create → get → events → results → erase", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "rebeca-http-"));
    const { stdout } = await run("bash", ["-euc", await walkthrough()], {
      cwd,
      env: { ...process.env, API: stack.httpUrl, KEY: key },
      timeout: 120_000,
    });
    const lines = stdout.trim().split("\n");
    const jobId = /^created (job_\w+) JOB_STATE_QUEUED$/.exec(lines[0]!)![1];
    expect(lines[1]).toBe(`got ${jobId} ${lines[1]!.split(" ")[2]}`);
    const events = lines.filter((l) => l.startsWith("event ")).map((l) => JSON.parse(l.slice(6)).event);
    expect(events.map((e: { type: string }) => e.type)).toEqual(["job.queued", "job.sampling", "job.decoding", "job.succeeded"]);
    expect(events.every((e: { jobId: string }) => e.jobId === jobId)).toBe(true);
    const outputs = lines.filter((l) => l.startsWith("output "));
    expect(outputs).toHaveLength(2);
    for (const [i, line] of outputs.entries()) expect(line).toMatch(new RegExp(`^output ${i} s3://\\S+/images/${i}\\.png \\d+x\\d+ [0-9a-f]{64}$`));
    // The erasure finished with a receipt: the job's record and its 2 images are gone.
    expect(lines.find((l) => l.startsWith("erased "))).toBe("erased USER_DATA_DELETION_STATE_SUCCEEDED records 1 images 2");
    const error = JSON.parse(lines.at(-2)!);
    expect(lines.at(-1)).toBe("http 400");
    expect(error).toMatchObject({ code: 3, details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "num_images" }] }] });
  });

  it("takes a client stream as JSON Lines (CreateBatch)", async () => {
    const users = modelUserIds().slice(0, 3);
    const lines = [
      { parameters: { requestId: "http-batch", numImages: 1 } },
      { users: { offset: 0, userIds: users.slice(0, 2) } },
      { users: { offset: 2, userIds: users.slice(2), last: true } },
    ];
    const res = await post("/rebeca.v1.BatchService/CreateBatch", lines.map((l) => JSON.stringify(l)).join("\n"));
    expect(res.status).toBe(200);
    expect(res.json.batch).toMatchObject({ receivedUsers: "3", counts: { total: "3" } });
    const badLine = `${JSON.stringify({ parameters: { requestId: "http-bad", numImages: 1 } })}\n{"users": oops}\n`;
    expect(await post("/rebeca.v1.BatchService/CreateBatch", badLine)).toMatchObject({ status: 400, json: { code: 3 } });
    expect(await post("/rebeca.v1.BatchService/CreateBatch", JSON.stringify(lines[0]), false)).toMatchObject({ status: 401, json: { code: 16 } });
  });

  it("answers errors as google.rpc.Status with the HTTP status of their code", async () => {
    expect(await post("/rebeca.v1.JobService/GetJob", '{"jobId":"job_x"}', false)).toMatchObject({ status: 401, json: { code: 16 } });
    expect(await post("/rebeca.v1.JobService/GetJob", "{not json")).toMatchObject({ status: 400, json: { code: 3 } });
    expect(await post("/rebeca.v1.JobService/GetJob", '{"jobId": 7, "nope": 1}')).toMatchObject({ status: 400, json: { code: 3 } });
    expect(await post("/rebeca.v1.JobService/Nope", "{}")).toMatchObject({ status: 501, json: { code: 12 } });
    expect((await fetch(`${stack.httpUrl}/rebeca.v1.JobService/GetJob`)).status).toBe(405);
    const served = await (await fetch(`${stack.httpUrl}/openapi.json`)).json();
    expect(served).toEqual(JSON.parse(await readFile(`${REPO_ROOT}docs/openapi.json`, "utf8")));
    const missing = await post("/rebeca.v1.JobService/GetJob", '{"jobId":"job_01aaaaaaaaaaaaaaaaaaaaaaaa"}');
    expect(missing).toMatchObject({ status: 404, json: { code: 5 } });
  });

  it("applies the gRPC message limit (MAX_MESSAGE_BYTES = 64 KiB here)", async () => {
    // Over the gRPC limit once encoded, under the bridge's 4× JSON cap: the gRPC server refuses it.
    const big = JSON.stringify({ requestId: "big", userId: "x".repeat(100_000), numImages: 1 });
    expect(await post("/rebeca.v1.JobService/CreateJob", big)).toMatchObject({ status: 429, json: { code: 8 } });
    // Over the JSON cap: refused before it is read whole.
    const huge = JSON.stringify({ requestId: "huge", userId: "x".repeat(300_000), numImages: 1 });
    expect(await post("/rebeca.v1.JobService/CreateJob", huge)).toMatchObject({ status: 429, json: { code: 8 } });
  });
});
