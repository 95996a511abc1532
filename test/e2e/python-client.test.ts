import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);
const CLIENT_DIR = `${REPO_ROOT}clients/python`;

/*
 * The Python client (clients/python) against a real gateway with workers and the notifier: its
 * stubs are generated from proto/ here, then its unittest suite runs (create → wait → verify the
 * signed callback, idempotency, a failed job, INVALID_ARGUMENT, a batch from a file).
 */
describe("Python client", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
    await run("bash", [`${CLIENT_DIR}/generate.sh`]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("passes its test suite against the gateway", async () => {
    const tenant = stack.tenants.acme!;
    // Debian's interpreter: it has python3-grpcio (the `python3` on PATH may be another one).
    const result = await run("/usr/bin/python3", ["-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v"], {
      cwd: CLIENT_DIR,
      env: {
        ...process.env,
        PYTHONPATH: CLIENT_DIR,
        REBECA_ADDRESS: stack.grpcAddress,
        REBECA_API_KEY: tenant.apiKey,
        REBECA_WEBHOOK_SECRET: tenant.webhookSecret,
        REBECA_USER_IDS: modelUserIds().slice(0, 8).join(","),
      },
      timeout: 300_000,
    }).catch((err: { stdout: string; stderr: string }) => {
      throw new Error(`python tests failed:\n${err.stderr}`);
    });
    // unittest reports on stderr: every test ran, none skipped.
    expect(result.stderr).toMatch(/Ran 10 tests/);
    expect(result.stderr).toMatch(/\nOK\n/);
    expect(result.stderr).not.toMatch(/skipped/);
  });
});
