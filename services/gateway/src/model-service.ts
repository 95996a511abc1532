import { status } from "@grpc/grpc-js";
import type { ModelServiceServer, TrafficPolicy as ProtoPolicy } from "@rebeca/contracts/grpc-models";
import type { Logger } from "@rebeca/platform";
import { listModelEvents, listPublished, PolicyError, type PolicyStore, type TrafficPolicy } from "@rebeca/registry";
import type { Redis } from "ioredis";
import { RpcError } from "./errors.js";
import type { Authenticate } from "./ports.js";
import type { GatewayMetrics } from "./metrics.js";
import { createRpcEdge } from "./rpc.js";
import { ValidationError } from "./validate.js";

export interface ModelServiceDeps {
  authenticate: Authenticate;
  metrics: GatewayMetrics;
  log: Logger;
  policies: PolicyStore;
  redis: Redis;
  redisPrefix: string;
  /** Versions this gateway can serve now (embedded, and fetched from the registry). */
  models: ReadonlyMap<string, unknown>;
  embedded: ReadonlySet<string>;
  /** Versions this gateway refused, with why. */
  refused: () => ReadonlyMap<string, string>;
}

const toProto = (p: TrafficPolicy): ProtoPolicy => ({
  stable: p.stable,
  candidate: p.candidate,
  candidateWeight: p.candidateWeight,
  updateTime: p.updatedAt,
  reason: p.reason,
});

/** Policy refusals are the caller's to fix. */
async function asRpc<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PolicyError) throw new RpcError(status.FAILED_PRECONDITION, err.message);
    throw err;
  }
}

/** The rebeca.v1.ModelService handlers: a tenant's key manages that tenant's traffic policy; every change is a `model.*` event. */
export function createModelService(deps: ModelServiceDeps): ModelServiceServer {
  const { unary } = createRpcEdge(deps);
  const servable = (version: string, field: string) => {
    if (!version) throw new ValidationError([{ field, description: "required" }]);
    if (!deps.models.has(version)) {
      const why = deps.refused().get(version);
      throw new RpcError(
        status.FAILED_PRECONDITION,
        why ? `model version ${version} was refused: ${why}` : `model version ${version.slice(0, 64)} is not deployed`,
      );
    }
  };
  return {
    listModels: unary("ListModels", async () => {
      const published = new Map((await listPublished(deps.redis, deps.redisPrefix)).map((p) => [p.version, p]));
      const names = new Set([...deps.models.keys(), ...deps.refused().keys()]);
      return {
        versions: [...names].sort().map((version) => {
          const p = published.get(version);
          return {
            version,
            source: deps.embedded.has(version) ? "embedded" : "registry",
            publishTime: p?.publishedAt ?? "",
            files: p?.files ?? 0,
            bytes: p?.bytes ?? 0,
            refusedReason: deps.refused().get(version) ?? "",
          };
        }),
      };
    }),
    getTrafficPolicy: unary("GetTrafficPolicy", async (tenant) => ({ policy: toProto(await deps.policies.get(tenant)) })),
    setCanary: unary("SetCanary", async (tenant, req) => {
      servable(req.candidate, "candidate");
      if (!(req.weightPercent > 0 && req.weightPercent <= 100)) throw new ValidationError([{ field: "weight_percent", description: "must be in (0, 100]" }]);
      const r = await asRpc(() => deps.policies.canary(tenant, req.candidate, req.weightPercent, tenant, req.reason || "canary"));
      return { policy: toProto(r.policy) };
    }),
    promote: unary("Promote", async (tenant, req) => {
      const target = req.version || (await deps.policies.get(tenant)).candidate;
      if (target) servable(target, "version");
      const r = await asRpc(() => deps.policies.promote(tenant, tenant, req.reason || "promote", req.version || undefined));
      return { policy: toProto(r.policy) };
    }),
    rollback: unary("Rollback", async (tenant, req) => {
      const r = await asRpc(() => deps.policies.rollback(tenant, tenant, req.reason || "rollback"));
      return { policy: toProto(r.policy), changed: r.changed };
    }),
    listModelEvents: unary("ListModelEvents", async (tenant, req) => {
      if (req.pageSize < 0 || req.pageSize > 100) throw new ValidationError([{ field: "page_size", description: "must be between 0 and 100" }]);
      const wanted = req.pageSize || 20;
      // Another tenant's policy changes are not the caller's to see.
      const events = (await listModelEvents(deps.redis, deps.redisPrefix, wanted * 10)).filter((e) => e.tenant === "" || e.tenant === tenant).slice(0, wanted);
      return {
        events: events.map((e) => ({
          eventId: e.id,
          type: e.type,
          version: e.version,
          tenant: e.tenant,
          actor: e.actor,
          reason: e.reason,
          time: e.time,
          detailJson: e.detail,
        })),
      };
    }),
  };
}
