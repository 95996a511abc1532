import { fileURLToPath } from "node:url";
import { jsonLine, startProcess, type ManagedProcess } from "./process.js";

/** The repository root (this file is in packages/devstack/{src,dist}). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type ServiceName = "gateway" | "prior-worker" | "decoder-worker" | "notifier" | "monitor" | "data-worker";

const STARTED: Record<ServiceName, string> = {
  gateway: "gateway started",
  "prior-worker": "prior worker started",
  "decoder-worker": "decoder worker started",
  notifier: "notifier started",
  monitor: "monitor started",
  "data-worker": "data worker started",
};

export interface RunningService {
  name: ServiceName;
  process: ManagedProcess;
  /** The `started` log line (ports and what was loaded). */
  started: Record<string, unknown>;
  httpPort: number;
}

/**
 * Starts a built service (`services/<name>/dist/main.js`) and waits for its `started` log line.
 * Ports are 0 (any free port) unless `env` says otherwise; the bound ones come from the log.
 */
export async function startService(name: ServiceName, env: Record<string, string>, timeoutMs = 60_000): Promise<RunningService> {
  const main = `${REPO_ROOT}services/${name}/dist/main.js`;
  // NODE_ARGS (e.g. "--cpu-prof --trace-gc") reaches node itself, for profiling a service.
  const nodeArgs = (env.NODE_ARGS ?? "").split(" ").filter(Boolean);
  const p = startProcess(name, process.execPath, [...nodeArgs, main], { HTTP_PORT: "0", HTTP_HOST: "127.0.0.1", LOG_LEVEL: "info", ...env });
  const started = await p.waitFor((line) => {
    const json = jsonLine(line);
    return json?.msg === STARTED[name] ? json : undefined;
  }, timeoutMs);
  return { name, process: p, started, httpPort: Number(started.httpPort) };
}
