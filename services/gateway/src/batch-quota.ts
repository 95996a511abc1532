/**
 * The images-per-day quota of batches (the rule is in @rebeca/userdata's image-reservations): a
 * batch is checked before it is created (its first users) and reserves its images as its users are
 * stored, so a batch past the day's quota is refused instead of running over it.
 */
import { status } from "@grpc/grpc-js";
import type { ImageReservations } from "@rebeca/userdata";
import { RpcError } from "./errors.js";
import { imagesPerDayViolation, type TenantQuotas } from "./quota.js";

/** The two checks the batch service makes; both throw RESOURCE_EXHAUSTED with a QuotaFailure. */
export interface BatchImageQuota {
  /**
   * Before a batch is created: its first `images` fit the day's quota (reserves nothing). Skipped
   * for a tenant without an images-per-day quota, and for a repeat (`isRepeat`: the request id
   * already made a batch, whose stored users are reserved).
   */
  precheck(tenant: string, images: number, isRepeat: () => Promise<boolean>): Promise<void>;
  /** Before users are stored: the batch's images up to its last stored user are reserved, or none is. */
  reserve(tenant: string, ask: { batchId: string; images: number; numImages: number }): Promise<void>;
}

function refusal(tenant: string, used: number, asked: number, limit: number): RpcError {
  const violation = imagesPerDayViolation(tenant, used, asked, limit);
  return new RpcError(status.RESOURCE_EXHAUSTED, `quota exceeded: ${violation.description}`, [], undefined, [violation]);
}

export function createBatchImageQuota(quotas: TenantQuotas, reservations: Pick<ImageReservations, "reserve" | "used">): BatchImageQuota {
  const limitOf = (tenant: string) => (quotas[tenant] ?? quotas["*"])?.imagesPerDay;
  return {
    async precheck(tenant, images, isRepeat) {
      const limit = limitOf(tenant);
      if (limit === undefined || (await isRepeat())) return;
      const used = await reservations.used(tenant);
      if (used + images > limit) throw refusal(tenant, used, images, limit);
    },
    async reserve(tenant, ask) {
      const limit = limitOf(tenant);
      if (limit === undefined) return;
      const result = await reservations.reserve(tenant, ask, limit);
      // Refused, `used` counts this batch at its whole ask: what the day counts without it is the rest.
      if (!result.ok) throw refusal(tenant, result.used - ask.images, ask.images, limit);
    },
  };
}
