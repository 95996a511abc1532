import { describe, expect, it } from "vitest";
import { K8S, OVERLAYS, SERVICES, byKind, deploymentOf, effectiveEnv, matches, one, render, renderOverlay, workloads, type Obj } from "./support.js";
import { validateObject } from "./validate.js";

const GPU = "nvidia.com/gpu";

describe.each(OVERLAYS)("overlay %s", (overlay) => {
  const objs = () => renderOverlay(overlay);

  it("renders with kubectl kustomize and every object validates against its schema", async () => {
    const all = objs();
    expect(all.length).toBeGreaterThan(20);
    for (const obj of all) await validateObject(obj);
    const kinds = new Set(all.map((o) => o.kind));
    for (const k of [
      "Deployment",
      "Service",
      "ConfigMap",
      "PodDisruptionBudget",
      "NetworkPolicy",
      "ScaledObject",
      "HorizontalPodAutoscaler",
      "PodMonitor",
      "PrometheusRule",
    ]) {
      expect(kinds, k).toContain(k);
    }
    // Everything lands in one namespace (the KEDA queries and alerts filter on it).
    for (const o of all.filter((x) => x.kind !== "Namespace")) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("rebeca");
  });

  it("requests GPUs, tolerates the GPU taint and selects GPU nodes only for decoders", () => {
    for (const { obj, pod } of workloads(objs())) {
      const isDecoder = obj.metadata.name.startsWith("rebeca-decoder-worker");
      const gpuLimits = pod.containers.map((c: Obj) => c.resources?.limits?.[GPU]).filter(Boolean);
      const gpuRequests = pod.containers.map((c: Obj) => c.resources?.requests?.[GPU]).filter(Boolean);
      const gpuTolerations = (pod.tolerations ?? []).filter((t: Obj) => t.key === GPU);
      const gpuSelector = Object.keys(pod.nodeSelector ?? {}).filter((k) => k.startsWith("nvidia.com/"));
      if (isDecoder) {
        expect(gpuLimits).toEqual(["1"]);
        expect(gpuTolerations).toEqual([{ key: GPU, operator: "Exists", effect: "NoSchedule" }]);
        expect(gpuSelector.length).toBe(1);
        const env = effectiveEnv(objs(), pod.containers[0]);
        expect(env.ORT_PROVIDERS?.split(",")[0]).toBe("cuda");
        expect(env.REQUIRE_GPU).toBe("true");
      } else {
        expect(gpuLimits, obj.metadata.name).toEqual([]);
        expect(gpuTolerations, obj.metadata.name).toEqual([]);
        expect(gpuSelector, obj.metadata.name).toEqual([]);
      }
      expect(gpuRequests, obj.metadata.name).toEqual([]);
    }
  });

  it("gives the gateway gRPC health probes and the workers HTTP probes on the ops port", () => {
    const all = objs();
    const gw = deploymentOf(all, "gateway").spec.template.spec.containers[0];
    const gwEnv = effectiveEnv(all, gw);
    const grpcPort = gw.ports.find((p: Obj) => p.name === "grpc").containerPort;
    expect(String(grpcPort)).toBe(gwEnv.GRPC_PORT);
    expect(gw.readinessProbe.grpc.port).toBe(grpcPort);
    expect(gw.startupProbe.grpc.port).toBe(grpcPort);
    // Liveness must not follow the gRPC health (NOT_SERVING while draining).
    expect(gw.livenessProbe.httpGet.path).toBe("/healthz");
    for (const svc of SERVICES) {
      const c = deploymentOf(all, svc).spec.template.spec.containers[0];
      const http = c.ports.find((p: Obj) => p.name === "http");
      expect(String(http.containerPort), svc).toBe(effectiveEnv(all, c).HTTP_PORT);
      expect(c.livenessProbe.httpGet, svc).toEqual({ path: "/healthz", port: "http" });
      expect(c.startupProbe, svc).toBeDefined();
      if (svc !== "gateway") expect(c.readinessProbe.httpGet, svc).toEqual({ path: "/readyz", port: "http" });
    }
  });

  it("runs every container non-root, read-only, without capabilities, with a writable /tmp for services", () => {
    const all = objs();
    for (const { obj, pod } of workloads(all)) {
      const name = obj.metadata.name;
      expect(pod.securityContext?.seccompProfile?.type, name).toBe("RuntimeDefault");
      expect(pod.automountServiceAccountToken, name).toBe(false);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext ?? {};
        const nonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
        const uid = sc.runAsUser ?? pod.securityContext?.runAsUser;
        expect(nonRoot, `${name}/${c.name}`).toBe(true);
        expect(uid, `${name}/${c.name}`).toBeGreaterThan(0);
        expect(sc.readOnlyRootFilesystem, `${name}/${c.name}`).toBe(true);
        expect(sc.allowPrivilegeEscalation, `${name}/${c.name}`).toBe(false);
        expect(sc.capabilities?.drop, `${name}/${c.name}`).toEqual(["ALL"]);
        expect(sc.privileged ?? false, `${name}/${c.name}`).toBe(false);
        for (const r of ["cpu", "memory"]) {
          expect(c.resources?.requests?.[r], `${name}/${c.name} requests.${r}`).toBeDefined();
          expect(c.resources?.limits?.[r], `${name}/${c.name} limits.${r}`).toBeDefined();
        }
        expect(c.image, `${name}/${c.name}`).toMatch(/:[\w.-]+$|@sha256:/);
        expect(c.image, `${name}/${c.name}`).not.toMatch(/:latest$/);
      }
    }
    for (const svc of SERVICES) {
      const pod = deploymentOf(all, svc).spec.template.spec;
      const tmp = pod.containers[0].volumeMounts.find((m: Obj) => m.mountPath === "/tmp");
      expect(pod.volumes.find((v: Obj) => v.name === tmp?.name)?.emptyDir, svc).toBeDefined();
    }
  });

  it("gives every pod that loads models a MODEL_CACHE_DIR on its own emptyDir, with the pruning bound below the volume's limit", () => {
    const all = objs();
    const loaders = workloads(all).filter(({ pod }) => /rebeca\/(gateway|prior-worker|decoder-worker|monitor)\b/.test(pod.containers[0].image));
    // The main and batch pools of both workers, the gateway and the monitor at least.
    expect(loaders.length, overlay).toBeGreaterThanOrEqual(4);
    const bytes = (q: string) => Number(/^(\d+)(Mi|Gi)$/.exec(q)![1]) * (q.endsWith("Gi") ? 2 ** 30 : 2 ** 20);
    for (const { obj, pod } of loaders) {
      const c = pod.containers[0];
      const env = effectiveEnv(all, c);
      const dir = env.MODEL_CACHE_DIR;
      expect(dir, obj.metadata.name).toMatch(/^\//);
      const mount = c.volumeMounts.find((m: Obj) => m.mountPath === dir);
      const volume = pod.volumes.find((v: Obj) => v.name === mount?.name);
      expect(volume?.emptyDir?.sizeLimit, obj.metadata.name).toBeDefined();
      expect(Number(env.MODEL_CACHE_MAX_BYTES), obj.metadata.name).toBeGreaterThan(0);
      expect(Number(env.MODEL_CACHE_MAX_BYTES), obj.metadata.name).toBeLessThan(bytes(volume.emptyDir.sizeLimit));
    }
  });

  it("sets terminationGracePeriodSeconds above each service's drain deadline (plus preStop)", () => {
    const all = objs();
    for (const svc of SERVICES) {
      const pod = deploymentOf(all, svc).spec.template.spec;
      const c = pod.containers[0];
      const env = effectiveEnv(all, c);
      expect(env.DRAIN_DEADLINE_MS, `${svc} sets DRAIN_DEADLINE_MS explicitly`).toMatch(/^\d+$/);
      const preStop = c.lifecycle?.preStop?.exec?.command;
      const preStopS = preStop?.[0] === "sleep" ? Number(preStop[1]) : preStop ? NaN : 0;
      const needed = preStopS + Number(env.DRAIN_DEADLINE_MS) / 1000;
      expect(pod.terminationGracePeriodSeconds, svc).toBeGreaterThan(needed);
      // The BullMQ lock outlives the drain, so a job cut off by it is redone, not doubled meanwhile.
      if (env.LOCK_DURATION_MS) expect(Number(env.LOCK_DURATION_MS), svc).toBeGreaterThan(Number(env.DRAIN_DEADLINE_MS));
    }
  });

  it("covers every Deployment with a PodDisruptionBudget that still lets nodes drain", () => {
    const all = objs();
    const pdbs = byKind(all, "PodDisruptionBudget");
    for (const svc of SERVICES) {
      const d = deploymentOf(all, svc);
      const covering = pdbs.filter((p) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
      expect(covering.length, svc).toBe(1);
      // maxUnavailable >= 1 (never minAvailable): a pool at 0 or 1 replica must not block drains.
      expect(covering[0].spec.minAvailable, svc).toBeUndefined();
      expect(covering[0].spec.maxUnavailable, svc).toBeGreaterThanOrEqual(1);
    }
  });

  it("gives every worker Deployment its own pool: one PDB each, selectors that never overlap, the classes it serves", () => {
    const all = objs();
    const workers = byKind(all, "Deployment").filter((d) => /^rebeca-(prior|decoder)-worker/.test(d.metadata.name));
    const pdbs = byKind(all, "PodDisruptionBudget");
    expect(workers.length).toBe(overlay === "dev" ? 2 : 4);
    for (const d of workers) {
      const name = d.metadata.name;
      expect(pdbs.filter((p) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels)).length, name).toBe(1);
      for (const other of workers.filter((o) => o !== d))
        expect(matches(d.spec.selector.matchLabels, other.spec.template.metadata.labels), `${name} selects ${other.metadata.name}'s pods`).toBe(false);
      const env = effectiveEnv(all, d.spec.template.spec.containers[0]);
      const batchPool = name.endsWith("-batch");
      expect(env.WORK_CLASSES ?? "interactive,batch", name).toBe(batchPool ? "batch" : overlay === "dev" ? "interactive,batch" : "interactive");
      expect(Number(env.PROCESS_NICE ?? 0), name).toBe(batchPool ? 10 : 0);
      const so = byKind(all, "ScaledObject").find((s) => s.spec.scaleTargetRef.name === name);
      expect(so, `${name} has a ScaledObject`).toBeDefined();
      const query: string = so!.spec.triggers[0].metadata.query;
      if (env.WORK_CLASSES) expect(query, name).toContain(`class="${env.WORK_CLASSES}"`);
      else expect(query, name).not.toContain("class=");
    }
  });

  it("autoscales each stage with KEDA on the backlog and the gateway with an HPA", () => {
    const all = objs();
    const sos = byKind(all, "ScaledObject");
    const target = (svc: string) => sos.find((s) => s.spec.scaleTargetRef.name === `rebeca-${svc}`);
    for (const [svc, queue] of [
      ["prior-worker", "prior"],
      ["decoder-worker", "decode"],
      ["notifier", "callbacks"],
      ["data-worker", "data"],
    ] as const) {
      const so = target(svc);
      expect(so, svc).toBeDefined();
      deploymentOf(all, svc);
      expect(deploymentOf(all, svc).spec.replicas, `${svc}: KEDA owns replicas`).toBeUndefined();
      const [trigger] = so!.spec.triggers;
      expect(trigger.type).toBe("prometheus");
      expect(trigger.metadata.query).toMatch(/rebeca_queue_backlog_(total_)?jobs\{/);
      expect(trigger.metadata.query).toContain(`queue="${queue}"`);
      expect(trigger.metadata.query).toContain(`namespace="${so!.metadata.namespace}"`);
      // Deduplicated over exporters before summing over tenants.
      expect(trigger.metadata.query).toMatch(/^sum\(max by \(queue, tenant/);
      expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
    }
    const decoder = target("decoder-worker")!;
    expect(decoder.spec.minReplicaCount).toBe(0);
    // Any unfinished decode job must wake the pool: activation below one job.
    expect(Number(decoder.spec.triggers[0].metadata.activationThreshold)).toBeLessThan(1);
    expect(target("notifier")!.spec.minReplicaCount, "the notifier's dispatcher must always run").toBeGreaterThanOrEqual(1);
    expect(target("data-worker")!.spec.minReplicaCount, "the data worker exports its own queue's backlog").toBeGreaterThanOrEqual(1);
    const hpa = one(all, "HorizontalPodAutoscaler", "rebeca-gateway");
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: "Deployment", name: "rebeca-gateway" });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
  });

  it("denies traffic by default and keeps webhooks away from private and metadata addresses", () => {
    const all = objs();
    const nps = byKind(all, "NetworkPolicy");
    const deny = nps.find((n) => Object.keys(n.spec.podSelector).length === 0 && !n.spec.ingress && !n.spec.egress);
    expect(deny?.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    const notifier = nps.find((n) => n.metadata.name === "rebeca-notifier-egress")!;
    const except = notifier.spec.egress[0].to[0].ipBlock.except;
    for (const cidr of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]) expect(except).toContain(cidr);
    // Every service may reach Redis.
    const redis = nps.find((n) => n.metadata.name === "rebeca-allow-redis")!;
    expect(redis.spec.egress[0].ports).toEqual([{ protocol: "TCP", port: 6379 }]);
  });

  it("references only ConfigMaps that exist (and, in dev, Secrets that exist)", () => {
    const all = objs();
    const names = (kind: string) => new Set(byKind(all, kind).map((o) => o.metadata.name));
    const cms = names("ConfigMap");
    const secrets = names("Secret");
    for (const { obj, pod } of workloads(all)) {
      for (const c of pod.containers) {
        for (const f of c.envFrom ?? []) if (f.configMapRef) expect(cms, obj.metadata.name).toContain(f.configMapRef.name);
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref && !ref.optional && overlay === "dev") expect(secrets, `${obj.metadata.name} ${e.name}`).toContain(ref.name);
        }
      }
      for (const v of pod.volumes ?? []) {
        if (v.configMap) expect(cms).toContain(v.configMap.name);
        if (v.secret && overlay === "dev") expect(secrets).toContain(v.secret.secretName);
      }
    }
  });
});

describe("Redis", () => {
  it("dev runs a StatefulSet with AOF everysec and noeviction; prod references an external Redis", () => {
    const dev = renderOverlay("dev");
    const sts = one(dev, "StatefulSet", "rebeca-redis");
    const conf = one(dev, "ConfigMap", "rebeca-redis-config").data["redis.conf"] as string;
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^appendfsync everysec$/m);
    expect(conf).toMatch(/^maxmemory \d+mb$/m);
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe("data");
    const redisUrl = Buffer.from(byKind(dev, "Secret").find((s) => s.metadata.name.startsWith("rebeca-redis"))!.data.url, "base64").toString();
    expect(redisUrl).toBe("redis://rebeca-redis:6379");
    expect(one(dev, "Service", "rebeca-redis").spec.selector).toEqual(sts.spec.selector.matchLabels);

    const prod = renderOverlay("prod");
    expect(byKind(prod, "StatefulSet")).toEqual([]);
    expect(one(prod, "Service", "rebeca-redis").spec.type).toBe("ExternalName");
    // Production secrets are never rendered from the repository.
    expect(byKind(prod, "Secret")).toEqual([]);
  });

  it("spot: the batch decoder pool runs on spot GPU nodes and is gone within a 30 s preemption notice", () => {
    const spot = renderOverlay("spot");
    const decoders = byKind(spot, "Deployment").filter((d) => d.metadata.name.startsWith("rebeca-decoder-worker"));
    const onSpot = (d: Obj) => d.spec.template.spec.nodeSelector?.["karpenter.sh/capacity-type"] === "spot";
    expect(decoders.filter(onSpot).map((d) => d.metadata.name)).toEqual(["rebeca-decoder-worker-batch"]);
    const pool = one(spot, "Deployment", "rebeca-decoder-worker-batch");
    const pod = pool.spec.template.spec;
    // The GPU taint is still tolerated (a patched list replaces the base's) and spot taints are too.
    expect(pod.tolerations).toContainEqual({ key: GPU, operator: "Exists", effect: "NoSchedule" });
    expect(pod.tolerations.map((t: Obj) => t.key)).toEqual(expect.arrayContaining(["cloud.google.com/gke-spot", "kubernetes.azure.com/scalesetpriority"]));
    const env = effectiveEnv(spot, pod.containers[0]);
    const preStop = pod.containers[0].lifecycle?.preStop?.exec?.command;
    const preStopS = preStop?.[0] === "sleep" ? Number(preStop[1]) : 0;
    expect(pod.terminationGracePeriodSeconds).toBeLessThan(30);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopS + Number(env.DRAIN_DEADLINE_MS) / 1000);
    expect(Number(env.LOCK_DURATION_MS)).toBeGreaterThan(Number(env.DRAIN_DEADLINE_MS));
    expect(Number(env.DECODE_CHUNK_IMAGES)).toBeGreaterThan(0);
    const pdbs = byKind(spot, "PodDisruptionBudget").filter((p) => matches(p.spec.selector.matchLabels, pool.spec.template.metadata.labels));
    expect(pdbs).toHaveLength(1);
    // Interactive decoders and the on-demand pools are unchanged from prod.
    const prodMain = one(renderOverlay("prod"), "Deployment", "rebeca-decoder-worker");
    expect(one(spot, "Deployment", "rebeca-decoder-worker").spec).toEqual(prodMain.spec);
  });

  it("the base renders on its own too", () => {
    expect(render(`${K8S}base`).length).toBeGreaterThan(20);
  });
});
