import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { startStack, type Stack } from "@rebeca/devstack";
import { REPO, SERVICES, deploymentOf, effectiveEnv, renderOverlay, tool } from "./support.js";

// Variables that point at the cluster (addresses, mounted files, the GPU) stay as the local stack
// sets them; every other value comes from the rendered prod manifests, so the services prove they
// accept their production configuration.
const LOCAL =
  /^(REDIS_URL|QUEUE_PREFIX|S3_.*|MODELS_DIR|PROTO_DIR|HTTP_PORT|HTTP_HOST|GRPC_PORT|GRPC_HOST|API_KEYS_FILE|WEBHOOK_SECRETS_FILE|CALLBACK_ALLOW_HOSTS|ORT_PROVIDERS|REQUIRE_GPU|ADMIN_TOKEN|CONSOLE_PORT|CONSOLE_HOST|CONSOLE_ADMIN_KEYS)$/;

function productionEnv(): Record<string, Record<string, string>> {
  const objs = renderOverlay("prod");
  return Object.fromEntries(
    SERVICES.map((svc) => {
      const env = effectiveEnv(objs, deploymentOf(objs, svc).spec.template.spec.containers[0]);
      return [svc, Object.fromEntries(Object.entries(env).filter(([k, v]) => !LOCAL.test(k) && !v.startsWith("<from")))];
    }),
  );
}

// promtool check metrics: 0 clean, 3 lint problems only, anything else a parse failure.
const LINT_EXIT = 3;

// The real services, started as processes on real Redis and S3 (requires `pnpm run build`).
describe("each service's /metrics", () => {
  let stack: Stack;
  beforeAll(async () => {
    for (const svc of SERVICES) {
      if (!existsSync(`${REPO}services/${svc}/dist/main.js`)) throw new Error(`services/${svc} is not built: run pnpm run build`);
    }
    stack = await startStack({ env: productionEnv(), services: [...SERVICES] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each(SERVICES)("%s passes promtool check metrics and serves /healthz and /readyz", async (svc) => {
    expect(stack.envFor(svc).DRAIN_DEADLINE_MS, "runs with the manifests' settings").toBe(productionEnv()[svc].DRAIN_DEADLINE_MS);
    const base = `http://127.0.0.1:${stack.services[svc]!.httpPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    // Twice: gauges read on scrape may fill on the second one (see backlog.test.ts).
    await (await fetch(`${base}/metrics`)).text();
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const r = tool("promtool", ["check", "metrics"], text);
    const report = `promtool check metrics on ${svc}:\n${r.stdout}${r.stderr}`;
    const problems = `${r.stdout}${r.stderr}`
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    expect(problems, report).toEqual([]);
    expect(r.status === 0 || (r.status === LINT_EXIT && problems.length > 0), report).toBe(true);
    // The series the manifests, alerts and dashboard rely on.
    const expected: Record<string, string[]> = {
      gateway: ["rebeca_gateway_requests_total", "rebeca_queue_backlog_total_jobs", 'queue="prior"', 'queue="decode"'],
      "prior-worker": ["rebeca_stage_jobs_total", "rebeca_stage_queue_wait_seconds", "rebeca_queue_backlog_total_jobs"],
      "decoder-worker": ["rebeca_stage_jobs_total", "rebeca_stage_duration_seconds", "rebeca_queue_backlog_total_jobs"],
      monitor: ["rebeca_monitor_verifier_score", "rebeca_monitor_users_scored_total", "rebeca_monitor_samples_skipped_total"],
      notifier: ["rebeca_callback_deliveries_total", "rebeca_callback_dead_letters", "rebeca_queue_backlog_total_jobs", 'queue="callbacks"'],
      "data-worker": ["rebeca_data_erased_users_total", "rebeca_queue_backlog_jobs", 'queue="data"'],
    };
    for (const s of expected[svc]) expect(text, `${svc} exports ${s}`).toContain(s);
  });
});
