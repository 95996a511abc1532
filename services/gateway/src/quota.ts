/**
 * Per-tenant quotas (TENANT_QUOTAS): images per day, concurrent batches, backlog. A request past
 * one is refused with RESOURCE_EXHAUSTED and a google.rpc.QuotaFailure naming each quota.
 */
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { RpcError, type QuotaViolation } from "./errors.js";

const quotaSchema = z
  .object({
    /** Images generated per UTC day, counting the request's own. */
    imagesPerDay: z.number().int().positive().optional(),
    /** Batches receiving or running at once. */
    concurrentBatches: z.number().int().positive().optional(),
    /** Unfinished prior jobs (the tenant's queued and running work). */
    backlog: z.number().int().positive().optional(),
  })
  .strict();
export type TenantQuota = z.infer<typeof quotaSchema>;

/** `{"acme": {"imagesPerDay": 100000}, "*": {...}}`: a tenant's own entry, or "*" for the rest. */
export const tenantQuotasSchema = z.record(z.string(), quotaSchema);
export type TenantQuotas = z.infer<typeof tenantQuotasSchema>;

/** Parses TENANT_QUOTAS. @throws Error naming the problem (the gateway refuses to start). */
export function parseTenantQuotas(json: string): TenantQuotas {
  let raw: unknown;
  try {
    raw = JSON.parse(json || "{}");
  } catch (err) {
    throw new Error(`TENANT_QUOTAS is not JSON: ${(err as Error).message}`);
  }
  const parsed = tenantQuotasSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`TENANT_QUOTAS: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** What a submission asks for. */
export interface QuotaAsk {
  /** Images of a job (a batch's are not known up front: they are reserved as its users are stored, batch-quota.ts). */
  images: number;
  batch: boolean;
}

/** Where the current use comes from (Redis, read per request of a tenant that has a quota). */
export interface QuotaReadings {
  imagesToday: (tenant: string) => Promise<number>;
  activeBatches: (tenant: string) => Promise<number>;
  backlog: (tenant: string) => Promise<number>;
}

/**
 * The images-per-day violation: `used` is what today already counts — images made, and images
 * running batches reserved and have not made yet (@rebeca/userdata image-reservations).
 */
export function imagesPerDayViolation(tenant: string, used: number, asked: number, limit: number): QuotaViolation {
  return {
    subject: `tenant:${tenant}`,
    description: `images per day: ${used} counted today (made or reserved by running batches), ${asked} asked, limit ${limit}`,
  };
}

/** The quotas a request would exceed (pure: limits and readings in, violations out). */
export function quotaViolations(
  tenant: string,
  quota: TenantQuota,
  ask: QuotaAsk,
  used: { imagesToday?: number; activeBatches?: number; backlog?: number },
): QuotaViolation[] {
  const out: QuotaViolation[] = [];
  const subject = `tenant:${tenant}`;
  if (quota.imagesPerDay !== undefined && used.imagesToday !== undefined && used.imagesToday + ask.images > quota.imagesPerDay)
    out.push(imagesPerDayViolation(tenant, used.imagesToday, ask.images, quota.imagesPerDay));
  if (ask.batch && quota.concurrentBatches !== undefined && used.activeBatches !== undefined && used.activeBatches >= quota.concurrentBatches)
    out.push({ subject, description: `concurrent batches: ${used.activeBatches} running, limit ${quota.concurrentBatches}` });
  if (quota.backlog !== undefined && used.backlog !== undefined && used.backlog >= quota.backlog)
    out.push({ subject, description: `backlog: ${used.backlog} unfinished jobs, limit ${quota.backlog}` });
  return out;
}

/** The check intake runs: reads only what the tenant's quota limits, throws RESOURCE_EXHAUSTED past any. */
export function createQuotaCheck(quotas: TenantQuotas, read: QuotaReadings) {
  return async (tenant: string, ask: QuotaAsk): Promise<void> => {
    const quota = quotas[tenant] ?? quotas["*"];
    if (!quota) return;
    const [imagesToday, activeBatches, backlog] = await Promise.all([
      quota.imagesPerDay !== undefined ? read.imagesToday(tenant) : undefined,
      ask.batch && quota.concurrentBatches !== undefined ? read.activeBatches(tenant) : undefined,
      quota.backlog !== undefined ? read.backlog(tenant) : undefined,
    ]);
    const violations = quotaViolations(tenant, quota, ask, { imagesToday, activeBatches, backlog });
    if (violations.length > 0)
      throw new RpcError(status.RESOURCE_EXHAUSTED, `quota exceeded: ${violations.map((v) => v.description).join("; ")}`, [], undefined, violations);
  };
}
export type QuotaCheck = ReturnType<typeof createQuotaCheck>;
