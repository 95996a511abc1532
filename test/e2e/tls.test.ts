import { execFile } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, REPO_ROOT, startStack, tlsFromFiles, type ClientTls, type Stack } from "@rebeca/devstack";
import { bufCurl } from "../support/buf-curl.js";
import { createTestPki, type TestPki } from "../support/certs.js";
import { grpcError } from "../support/grpc-errors.js";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);

/*
 * A gateway serving mutual TLS on gRPC and HTTP/JSON with certificates this test makes: the
 * TypeScript client, the CLI, curl and buf curl reach it with the CA and a client certificate;
 * without them they are refused; a renewed certificate is served without a restart.
 */
describe("gateway TLS and mutual TLS", () => {
  let stack: Stack;
  let pki: TestPki;
  let client: ClientTls;
  let httpsUrl: string;
  const served = { cert: "", key: "" };

  beforeAll(async () => {
    pki = createTestPki("first");
    const server = pki.issue("gateway", { server: true });
    const leaf = pki.issue("client", { server: false });
    // The gateway reads copies, so the reload test can replace them.
    served.cert = join(pki.dir, "served.pem");
    served.key = join(pki.dir, "served.key");
    copyFileSync(server.cert, served.cert);
    copyFileSync(server.key, served.key);
    stack = await startStack({
      services: ["gateway"],
      env: { gateway: { TLS_CERT_FILE: served.cert, TLS_KEY_FILE: served.key, TLS_CLIENT_CA_FILE: pki.caCert, TLS_RELOAD_SECONDS: "0.5" } },
    });
    client = tlsFromFiles({ caFile: pki.caCert, certFile: leaf.cert, keyFile: leaf.key });
    httpsUrl = stack.httpUrl.replace("http://", "https://");
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const apiKey = () => stack.tenants.acme!.apiKey;

  it("serves the TypeScript client over mutual TLS and refuses plaintext or no client certificate", async () => {
    const jobs = createJobClient(stack.grpcAddress, apiKey(), { tls: client });
    const created = await jobs.createJob({ requestId: "tls-1", userId: modelUserIds()[0]!, numImages: 1 });
    expect(created.job!.jobId).toMatch(/^job_/);
    jobs.close();

    const plaintext = createJobClient(stack.grpcAddress, apiKey());
    expect((await grpcError(() => plaintext.getJob(created.job!.jobId))).code).toBe(status.UNAVAILABLE);
    plaintext.close();
    const anonymous = createJobClient(stack.grpcAddress, apiKey(), { tls: { ca: client.ca! } });
    expect((await grpcError(() => anonymous.getJob(created.job!.jobId))).code).toBe(status.UNAVAILABLE);
    anonymous.close();
  });

  it("lets the CLI talk to it with --ca, --cert and --key", async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, ...args], {
        env: { ...process.env, REBECA_ADDRESS: stack.grpcAddress, REBECA_API_KEY: apiKey() },
        timeout: 60_000,
      });
    const leaf = { cert: join(pki.dir, "first-client.pem"), key: join(pki.dir, "first-client.key") };
    const ids = join(pki.dir, "ids.txt");
    writeFileSync(ids, modelUserIds().slice(0, 3).join("\n"));
    const submitted = await cli("submit", "--file", ids, "--request-id", "tls-cli", "--no-watch", "--ca", pki.caCert, "--cert", leaf.cert, "--key", leaf.key);
    const batchId = submitted.stdout.trim();
    expect(batchId).toMatch(/^batch_/);
    const listed = await cli("batches", "--ca", pki.caCert, "--cert", leaf.cert, "--key", leaf.key);
    expect(listed.stdout).toContain(batchId);
    await expect(cli("batches", "--ca", pki.caCert)).rejects.toThrow();
  });

  it("serves HTTP/JSON over the same mutual TLS (curl) and gRPC reflection to buf curl", async () => {
    const leaf = ["--cert", join(pki.dir, "first-client.pem"), "--key", join(pki.dir, "first-client.key")];
    const curl = (extra: string[]) =>
      run("curl", [
        "-sS",
        "--cacert",
        pki.caCert,
        ...extra,
        "-H",
        `authorization: Bearer ${apiKey()}`,
        "-d",
        "{}",
        `${httpsUrl}/rebeca.v1.JobService/ListJobs`,
      ]);
    expect(JSON.parse((await curl(leaf)).stdout).jobs.length).toBeGreaterThan(0);
    await expect(curl([])).rejects.toThrow();

    const viaBuf = await bufCurl(`https://${stack.grpcAddress}/rebeca.v1.JobService/ListJobs`, [{}], {
      headers: { authorization: `Bearer ${apiKey()}` },
      args: ["--cacert", pki.caCert, ...leaf],
    });
    expect(viaBuf.code).toBe(0);
    expect((viaBuf.messages[0] as { jobs: unknown[] }).jobs.length).toBeGreaterThan(0);
  });

  it("serves a renewed certificate without a restart", async () => {
    const next = createTestPki("second", pki.dir);
    const renewed = next.issue("gateway", { server: true });
    copyFileSync(renewed.key, served.key);
    copyFileSync(renewed.cert, served.cert);
    const trustsOnlyNew = { ...client, ca: await readFile(next.caCert) };
    const deadline = Date.now() + 20_000;
    let grpcOk = false;
    let httpsOk = false;
    while ((!grpcOk || !httpsOk) && Date.now() < deadline) {
      const jobs = createJobClient(stack.grpcAddress, apiKey(), { tls: trustsOnlyNew });
      grpcOk ||= await jobs.listJobs({}).then(
        () => true,
        () => false,
      );
      jobs.close();
      httpsOk ||= await run("curl", [
        "-sS",
        "--cacert",
        next.caCert,
        "--cert",
        join(pki.dir, "first-client.pem"),
        "--key",
        join(pki.dir, "first-client.key"),
        "-d",
        "{}",
        "-H",
        `authorization: Bearer ${apiKey()}`,
        `${httpsUrl}/rebeca.v1.JobService/ListJobs`,
      ]).then(
        () => true,
        () => false,
      );
      if (!grpcOk || !httpsOk) await new Promise((r) => setTimeout(r, 250));
    }
    expect({ grpcOk, httpsOk }).toEqual({ grpcOk: true, httpsOk: true });
  });
});
