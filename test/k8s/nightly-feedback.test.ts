import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { one, REPO, renderOverlay } from "./support.js";

describe("nightly feedback job (deploy/k8s/base/nightly-feedback.yaml, deploy/docker/nightly-feedback.Dockerfile)", () => {
  it.each(["dev", "prod"] as const)(
    "%s: a CronJob that never overlaps, never retries a verdict for long, and runs the image's nightly.sh with its config",
    (overlay) => {
      const all = renderOverlay(overlay);
      const cron = one(all, "CronJob", "rebeca-nightly-feedback");
      expect(cron.spec.concurrencyPolicy).toBe("Forbid");
      expect(cron.spec.jobTemplate.spec.backoffLimit).toBeLessThanOrEqual(1);
      expect(cron.spec.jobTemplate.spec.activeDeadlineSeconds).toBeGreaterThan(0);
      const pod = cron.spec.jobTemplate.spec.template.spec;
      expect(pod.restartPolicy).toBe("Never");
      const c = pod.containers[0];
      expect(c.image).toMatch(/rebeca\/nightly-feedback:/);
      const config = one(all, "ConfigMap", "rebeca-nightly-feedback").data;
      // Everything nightly.sh requires is set (REDIS_URL from the secret, S3 and the queue prefix from rebeca-common).
      for (const k of ["INTERACTIONS_URI", "BASE_MODEL_DIR", "ITEMS", "ITEM_IDS", "CANDIDATE_VERSION"]) expect(config[k], k).toBeTruthy();
      expect(c.env.map((e: { name: string }) => e.name)).toContain("REDIS_URL");
      const common = one(all, "ConfigMap", "rebeca-common").data;
      for (const k of ["S3_BUCKET", "QUEUE_PREFIX"]) expect(common[k], k).toBeDefined();
      // It reaches S3 over 443 (the registry and the interactions).
      const s3 = one(all, "NetworkPolicy", "rebeca-allow-s3");
      expect(s3.spec.podSelector.matchExpressions[0].values).toContain("nightly-feedback");
    },
  );

  it("the image has Debian's PyTorch, the deployed CLI and training/, runs as a numeric non-root user and starts nightly.sh", () => {
    const df = readFileSync(`${REPO}deploy/docker/nightly-feedback.Dockerfile`, "utf8");
    expect(df).toMatch(/pnpm --filter @rebeca\/cli deploy --prod \/out\/cli/);
    expect(df).toMatch(/apt-get install[^\n]*python3-torch/);
    expect(df).toMatch(/COPY --from=build \/src\/training \/app\/training/);
    expect(df).toMatch(/^USER \d+:\d+$/m);
    expect(df).toMatch(/^ENTRYPOINT \["bash", "\/app\/training\/nightly\.sh"\]$/m);
    // What the entry point runs exists: the script, and the CLI path it is given.
    expect(readFileSync(`${REPO}training/nightly.sh`, "utf8")).toContain('node "$CLI" models publish');
    expect(df).toContain("REBECA_CLI=/app/cli/dist/main.js");
  });
});
