/**
 * Batches under a tenant's canary. A batch accepted without a model_version while the tenant runs a
 * canary records it (`spec.canary`), and each user gets the version a single job of theirs would:
 * the same stable hash of (tenant, user). Users are grouped by version into shards, so a worker
 * still serves one version per shard and the prior and decoder stages stay as they are: the
 * shard-builder's block of consecutive positions `b` becomes shard `2b` (its stable users) and
 * `2b + 1` (its candidate users), each listing its users' positions. The split is a pure function
 * of the users and the recorded canary, so a resumed intake rebuilds the very same shards (their
 * ids make a re-add a no-op), and a policy changed after acceptance moves no accepted user.
 */
import type { BatchSpec } from "@rebeca/contracts";
import { routeVersion } from "@rebeca/registry";
import type { BuiltShard } from "./shard-builder.js";

/** One version's users of a block: a shard of its own (possibly empty). */
export interface VersionShard {
  index: number;
  version: string;
  arm: "stable" | "candidate";
  userIds: string[];
  /** Position of userIds[0] (the block's first position when the shard is empty). */
  firstPosition: number;
  /** Positions of `userIds`; absent when they are the block's consecutive positions (no canary). */
  positions?: number[];
}

/** Shard indices each block of `shardSize` users takes: 1, or 2 under a canary (stable, candidate). */
export function shardsPerBlock(spec: Pick<BatchSpec, "canary">): number {
  return spec.canary ? 2 : 1;
}

/** Shards of a batch of `total` users (what the batch is sealed with). */
export function shardsOfBatch(spec: Pick<BatchSpec, "canary" | "shardSize">, total: number): number {
  return Math.ceil(total / spec.shardSize) * shardsPerBlock(spec);
}

/** Splits a block of consecutive users by the version each gets (pure). */
export function splitByVersion(tenant: string, spec: Pick<BatchSpec, "canary" | "modelVersion">, block: BuiltShard): VersionShard[] {
  if (!spec.canary) return [{ index: block.index, version: spec.modelVersion, arm: "stable", userIds: block.userIds, firstPosition: block.firstPosition }];
  const policy = { stable: spec.modelVersion, candidate: spec.canary.version, candidateWeight: spec.canary.weight };
  const parts: VersionShard[] = [
    { index: 2 * block.index, version: policy.stable, arm: "stable", userIds: [], firstPosition: block.firstPosition, positions: [] },
    { index: 2 * block.index + 1, version: policy.candidate, arm: "candidate", userIds: [], firstPosition: block.firstPosition, positions: [] },
  ];
  block.userIds.forEach((userId, j) => {
    // Servable was checked when the canary was recorded; the hash alone decides from then on.
    const part = parts[routeVersion(policy, tenant, userId, () => true).arm === "candidate" ? 1 : 0]!;
    part.userIds.push(userId);
    part.positions!.push(block.firstPosition + j);
  });
  for (const part of parts) part.firstPosition = part.positions![0] ?? block.firstPosition;
  return parts;
}
