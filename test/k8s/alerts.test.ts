import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { K8S, OVERLAYS, REPO, one, renderOverlay, tool } from "./support.js";

const RULE_TESTS = `${REPO}deploy/monitoring/rebeca-alerts.test.yaml`;

/** The PrometheusRule's spec as a plain Prometheus rule file, beside a copy of the unit tests. */
function extractRules(spec: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "rebeca-rules-"));
  writeFileSync(join(dir, "rebeca-alerts.rules.yaml"), stringify(spec));
  copyFileSync(RULE_TESTS, join(dir, "rebeca-alerts.test.yaml"));
  return dir;
}

describe("alert rules", () => {
  const source = parse(readFileSync(`${K8S}base/monitoring/prometheusrule.yaml`, "utf8"));
  const dir = extractRules(source.spec);

  it("pass promtool check rules", () => {
    const r = tool("promtool", ["check", "rules", join(dir, "rebeca-alerts.rules.yaml")]);
    expect(r.stdout + r.stderr).toContain("SUCCESS");
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("pass promtool test rules, with a unit test for every alert", () => {
    const alerts = source.spec.groups.flatMap((g: { rules: { alert?: string }[] }) => g.rules.map((r) => r.alert).filter(Boolean));
    expect(alerts).toEqual(
      expect.arrayContaining([
        "RebecaBacklogGrowing",
        "RebecaDrainETABeyondNight",
        "RebecaJobFailureRate",
        "RebecaCallbackDeadLetters",
        "RebecaRedisMemoryHigh",
        "RebecaPersonalizationDropped",
        "RebecaCanaryRolledBack",
      ]),
    );
    const tests = parse(readFileSync(RULE_TESTS, "utf8"));
    const firing = new Set<string>();
    for (const t of tests.tests) for (const a of t.alert_rule_test ?? []) if (a.exp_alerts.length > 0) firing.add(a.alertname);
    for (const alert of alerts) expect(firing, `a test where ${alert} fires`).toContain(alert);
    const r = tool("promtool", ["test", "rules", join(dir, "rebeca-alerts.test.yaml")]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain("SUCCESS");
  });

  it.each(OVERLAYS)("are rendered unchanged in the %s overlay", (overlay) => {
    expect(one(renderOverlay(overlay), "PrometheusRule", "rebeca").spec).toEqual(source.spec);
  });
});

describe("Grafana dashboard", () => {
  it("is valid JSON with panels on the backlog, drain ETA, failures, callbacks and Redis, shipped as a ConfigMap", () => {
    const text = readFileSync(`${K8S}base/monitoring/rebeca-dashboard.json`, "utf8");
    const dash = JSON.parse(text);
    expect(dash.uid).toBe("rebeca-pipeline");
    const exprs = JSON.stringify(dash.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr)));
    for (const m of [
      "rebeca_queue_backlog_total_jobs",
      "rebeca:stage_drain_eta_seconds",
      "rebeca_jobs_finished_total",
      "rebeca_callback_dead_letters",
      "redis_memory_used_bytes",
      "rebeca_stage_queue_wait_seconds_bucket",
      "rebeca_gateway_requests_total",
      "rebeca:personalization_effect:mean30m",
    ]) {
      expect(exprs, m).toContain(m);
    }
    for (const overlay of OVERLAYS) {
      const cm = one(renderOverlay(overlay), "ConfigMap", "rebeca-grafana-dashboard");
      expect(cm.metadata.labels.grafana_dashboard).toBe("1");
      expect(JSON.parse(cm.data["rebeca-dashboard.json"])).toEqual(dash);
    }
  });
});
