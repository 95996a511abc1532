import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REPO, SERVICES } from "./support.js";

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile -> instructions (continuation lines joined, comments dropped), split by stage. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: { from: string; name?: string; body: Instruction[] }[] } {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const args: Record<string, string> = {};
  const stages: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    const ins = { op: op.toUpperCase(), args: rest };
    if (ins.op === "FROM") {
      const [, image, name] = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) ?? [];
      stages.push({ from: image.replace(/\$\{(\w+)\}/g, (_, v) => args[v] ?? `<${v}>`), name, body: [] });
    } else if (stages.length === 0 && ins.op === "ARG") {
      const [k, v] = ins.args.split("=");
      args[k] = v;
    } else stages[stages.length - 1]?.body.push(ins);
  }
  return { args, stages };
}

describe.each(SERVICES)("deploy/docker/%s.Dockerfile", (svc) => {
  const path = `${REPO}deploy/docker/${svc}.Dockerfile`;
  const df = () => parseDockerfile(readFileSync(path, "utf8"));

  it("is multi-stage: builds the workspace and `pnpm deploy`s the service's production dependencies", () => {
    const { stages } = df();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages[0];
    expect(build.from).toMatch(/^node:24[.\w-]*$/);
    const runs = build.body
      .filter((i) => i.op === "RUN")
      .map((i) => i.args)
      .join("\n");
    expect(runs).toMatch(/pnpm install --frozen-lockfile/);
    expect(runs).toMatch(/pnpm run build/);
    expect(runs).toContain(`pnpm --filter @rebeca/${svc} deploy --prod /out`);
    // The same pnpm as the setup script installs (the lockfile's format is pnpm 12's).
    const pnpm = /npm install -g (pnpm@[\w.]+)/.exec(readFileSync(`${REPO}packages/devstack/bin/setup.sh`, "utf8"))![1];
    expect(runs).toContain(`npm install -g ${pnpm}`);
  });

  it("runs Node 24 as a numeric non-root user with the service's entry point", () => {
    const { stages } = df();
    const runtime = stages[stages.length - 1];
    const body = runtime.body;
    const user = body.filter((i) => i.op === "USER").at(-1)?.args ?? "";
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    expect(body.find((i) => i.op === "ENTRYPOINT")?.args).toBe('["node", "--enable-source-maps", "dist/main.js"]');
    expect(body.some((i) => i.op === "COPY" && /--from=build \/out \/app$/.test(i.args))).toBe(true);
    if (svc === "decoder-worker") {
      expect(runtime.from).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
      expect(body.some((i) => i.op === "COPY" && i.args.includes("/usr/local/bin/node"))).toBe(true);
      expect(stages.find((s) => s.name === "node")?.from).toMatch(/^node:24/);
    } else {
      expect(runtime.from).toMatch(/^node:24[.\w-]*$/);
    }
    // The manifests' runAsUser matches the image's user.
    expect(user.split(":")[0]).toBe("10001");
  });

  it(svc === "decoder-worker" ? "installs onnxruntime-node's CUDA provider at build time" : "skips onnxruntime-node's CUDA download", () => {
    const { stages } = df();
    const text = stages
      .flatMap((s) => s.body)
      .map((i) => `${i.op} ${i.args}`)
      .join("\n");
    expect(text).toContain("ONNXRUNTIME_NODE_INSTALL=skip");
    if (svc === "decoder-worker") {
      expect(text).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install/);
      expect(text).toContain("libonnxruntime_providers_cuda.so");
      // The install script that the Dockerfile runs accepts that value (onnxruntime-node's own metadata).
      const meta = readFileSync(`${REPO}node_modules/.pnpm/node_modules/onnxruntime-node/script/install-metadata.js`, "utf8");
      expect(meta).toMatch(/'linux\/x64': \['cuda12'\]/);
    } else {
      expect(text).not.toContain("cuda12");
    }
  });

  it("copies only paths that exist and are not excluded by .dockerignore", () => {
    const ignore = readFileSync(`${REPO}.dockerignore`, "utf8");
    for (const must of ["**/node_modules", "**/dist", ".git"]) expect(ignore).toContain(must);
    const { stages } = df();
    for (const i of stages[0].body.filter((x) => x.op === "COPY" && !x.args.startsWith("--from"))) {
      for (const src of i.args.split(/\s+/).slice(0, -1)) if (src !== ".") expect(existsSync(`${REPO}${src}`), src).toBe(true);
    }
    // The gateway's reflection serves the descriptor set its build writes to gen/; `pnpm deploy` copies it.
    if (svc === "gateway") expect(JSON.parse(readFileSync(`${REPO}services/gateway/package.json`, "utf8")).files).toContain("gen");
    // The notifier and the data worker load no model.
    if (svc !== "notifier" && svc !== "data-worker") expect(readFileSync(path, "utf8")).toContain("/src/models /app/models");
  });
});
