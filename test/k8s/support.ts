import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const K8S = `${REPO}deploy/k8s/`;
export const OVERLAYS = ["dev", "prod", "spot"] as const;

export type Obj = Record<string, any>;

/**
 * Runs a required tool; a missing tool is a test failure with the fix, never a skip.
 */
export function tool(name: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(name, args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error(`${name} is not installed: run packages/devstack/bin/setup.sh --with-promtool (installs kubectl and promtool)`);
  }
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const rendered = new Map<string, Obj[]>();

/** `kubectl kustomize <dir>` parsed into objects (cached per directory). */
export function render(dir: string): Obj[] {
  let objs = rendered.get(dir);
  if (!objs) {
    const r = tool("kubectl", ["kustomize", dir]);
    if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
    objs = parseAllDocuments(r.stdout)
      .map((d) => {
        if (d.errors.length > 0) throw new Error(`bad YAML from kustomize: ${d.errors[0].message}`);
        return d.toJSON() as Obj;
      })
      .filter(Boolean);
    rendered.set(dir, objs);
  }
  return objs;
}

export const renderOverlay = (overlay: string) => render(`${K8S}overlays/${overlay}`);

export const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
export function one(objs: Obj[], kind: string, name: string): Obj {
  const found = objs.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found;
}

/** Pod-owning workloads with their pod template spec. */
export function workloads(objs: Obj[]): { obj: Obj; pod: Obj }[] {
  const pods = objs.filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind)).map((obj) => ({ obj, pod: obj.spec.template.spec }));
  // A CronJob's pods are held to the same rules.
  const cron = objs.filter((o) => o.kind === "CronJob").map((obj) => ({ obj, pod: obj.spec.jobTemplate.spec.template.spec }));
  return [...pods, ...cron];
}

/** The four Rebeca services' Deployments by service name. */
export const SERVICES = ["gateway", "prior-worker", "decoder-worker", "notifier", "monitor", "data-worker"] as const;
export const deploymentOf = (objs: Obj[], svc: string) => one(objs, "Deployment", `rebeca-${svc}`);

/**
 * A container's effective environment: envFrom ConfigMaps first, then `env` (which wins), as the
 * kubelet resolves it. Secret-sourced values are reported as `<secret>`.
 */
export function effectiveEnv(objs: Obj[], container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, one(objs, "ConfigMap", from.configMapRef.name).data ?? {});
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.configMapKeyRef) env[e.name] = one(objs, "ConfigMap", e.valueFrom.configMapKeyRef.name).data[e.valueFrom.configMapKeyRef.key];
    else env[e.name] = "<from " + Object.keys(e.valueFrom ?? {}).join() + ">";
  }
  return env;
}

export function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

export { execFileSync };
