import { describe, expect, it } from "vitest";
import { routeVersion } from "@rebeca/registry";
import { shardsOfBatch, splitByVersion } from "./batch-routing.js";

const users = Array.from({ length: 1000 }, (_, i) => `u${i}`);
const block = { index: 3, firstPosition: 3000, userIds: users };

describe("batch routing", () => {
  it("without a canary a block is one shard of the batch's version, positions implied", () => {
    expect(splitByVersion("acme", { modelVersion: "v1" }, block)).toEqual([{ index: 3, version: "v1", arm: "stable", userIds: users, firstPosition: 3000 }]);
    expect(shardsOfBatch({ shardSize: 100 }, 1001)).toBe(11);
  });

  it("under a canary each user lands where a single job of theirs would, in shards 2b and 2b+1 with their positions", () => {
    const spec = { modelVersion: "v1", canary: { version: "v2", weight: 10 } };
    const [stable, candidate] = splitByVersion("acme", spec, block);
    expect(stable).toMatchObject({ index: 6, version: "v1", arm: "stable" });
    expect(candidate).toMatchObject({ index: 7, version: "v2", arm: "candidate" });
    expect(stable!.userIds.length + candidate!.userIds.length).toBe(users.length);
    expect(candidate!.firstPosition).toBe(candidate!.positions![0]);
    for (const part of [stable!, candidate!])
      part.userIds.forEach((u, j) => {
        expect(part.positions![j]).toBe(3000 + users.indexOf(u));
        expect(routeVersion({ stable: "v1", candidate: "v2", candidateWeight: 10 }, "acme", u, () => true).version).toBe(part.version);
      });
    expect(candidate!.userIds.length).toBeGreaterThan(60);
    expect(candidate!.userIds.length).toBeLessThan(140);
    // The tenant is part of the hash: another tenant's split differs.
    expect(splitByVersion("globex", spec, block)[1]!.userIds).not.toEqual(candidate!.userIds);
    expect(shardsOfBatch({ shardSize: 100, canary: spec.canary }, 1001)).toBe(22);
  });
});
