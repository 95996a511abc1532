import { describe, expect, it } from "vitest";
import type { BatchRecord, JobKind, JobRecord } from "@rebeca/contracts";
import type { OutputOwner } from "@rebeca/jobstore";
import { createLogger, Registry } from "@rebeca/platform";
import { createDeadlineReaper, verdictOf, type UnqueueResult } from "./deadline-reaper.js";

const NOW = Date.parse("2026-12-03T06:00:00Z");
const key = (o: OutputOwner) => `${o.kind}:${o.id}`;

/** The reaper over in-memory parts: a due index, job and batch records, and queues as a map id → state. */
function world() {
  const due = new Map<string, { o: OutputOwner; at: number }>();
  const jobs = new Map<string, JobRecord>();
  const shards = new Map<string, { users: number; done: boolean }[]>();
  const batchStates = new Map<string, string>();
  const queued = new Map<string, UnqueueResult>(); // `${kind}/${id}` → where it stands
  const unqueued: string[] = [];
  const finalized: string[] = [];
  const expiredUsers = new Map<string, number>();
  const batchOf = (id: string): BatchRecord | null => {
    const s = shards.get(id);
    if (!s) return null;
    return {
      batchId: id,
      tenant: "acme",
      state: batchStates.get(id)!,
      counts: { shardsTotal: s.length, shardsDone: s.filter((x) => x.done).length },
    } as unknown as BatchRecord;
  };
  const reaper = createDeadlineReaper({
    index: {
      register: async () => {},
      due: async (now, limit) =>
        [...due.values()]
          .filter((d) => d.at <= now)
          .slice(0, limit)
          .map((d) => d.o),
      reschedule: async (o, at) => void due.set(key(o), { o, at }),
      remove: async (o) => void due.delete(key(o)),
      dueCount: async (now) => [...due.values()].filter((d) => d.at <= now).length,
    },
    jobs: {
      get: async (id) => jobs.get(id) ?? null,
      transition: async (id, to, patch) => {
        const r = jobs.get(id)!;
        if (["succeeded", "failed", "cancelled", "expired"].includes(r.state)) return { applied: false };
        jobs.set(id, { ...r, state: to, error: patch.error } as JobRecord);
        return { applied: true };
      },
    },
    batches: {
      get: async (id) => batchOf(id),
      openShards: async (id) => shards.get(id)!.flatMap((s, index) => (s.done ? [] : [{ index, users: s.users }])),
      shardDone: async (b, index, n) => {
        const s = shards.get(b.batchId)![index]!;
        if (s.done) return { counted: false, last: false };
        s.done = true;
        expiredUsers.set(b.batchId, (expiredUsers.get(b.batchId) ?? 0) + (n.expired ?? 0));
        return { counted: true, last: shards.get(b.batchId)!.every((x) => x.done) };
      },
    },
    unqueue: async (kind: JobKind, _tenant, id) => {
      const where = queued.get(`${kind}/${id}`) ?? "absent";
      if (where === "removed") {
        queued.delete(`${kind}/${id}`);
        unqueued.push(`${kind}/${id}`);
      }
      return where;
    },
    finalize: async (task) => {
      finalized.push(task.batchId);
      batchStates.set(task.batchId, "expired");
      return "done";
    },
    registry: new Registry(),
    log: createLogger("test", "silent"),
    maxItems: 10,
    recheckMs: 30_000,
    now: () => NOW,
  });
  const addJob = (id: string, state: string, where: Partial<Record<JobKind, UnqueueResult>>) => {
    jobs.set(id, { jobId: id, tenant: "acme", state, deadline: "2026-12-03T05:59:00Z" } as JobRecord);
    for (const [kind, w] of Object.entries(where)) queued.set(`${kind}/${id}`, w);
    due.set(`job:${id}`, { o: { kind: "job", tenant: "acme", id }, at: NOW - 60_000 });
  };
  const addBatch = (id: string, state: string, users: number[]) => {
    shards.set(
      id,
      users.map((u) => ({ users: u, done: false })),
    );
    batchStates.set(id, state);
    due.set(`batch:${id}`, { o: { kind: "batch", tenant: "acme", id }, at: NOW - 60_000 });
  };
  return { reaper, due, jobs, queued, unqueued, finalized, expiredUsers, shards, addJob, addBatch };
}

describe("deadline reaper", () => {
  it("leaves work a worker holds to that worker, and expires anything else", () => {
    expect(verdictOf(["removed", "absent"])).toBe("expire");
    expect(verdictOf(["absent", "absent"])).toBe("expire");
    expect(verdictOf(["absent", "active"])).toBe("leave-to-worker");
  });

  it("takes a waiting job out of its queue and ends it EXPIRED with DEADLINE_EXCEEDED, once", async () => {
    const w = world();
    w.addJob("job_a", "queued", { sample: "removed" });
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 1, rechecks: 0 });
    expect(w.jobs.get("job_a")).toMatchObject({ state: "expired", error: { code: "DEADLINE_EXCEEDED" } });
    expect(w.unqueued).toEqual(["sample/job_a"]);
    expect(w.due.size).toBe(0);
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 0, rechecks: 0 });
  });

  it("expires a sampled job waiting for a decoder (its decode job is the one removed)", async () => {
    const w = world();
    w.addJob("job_b", "decoding", { decode: "removed" });
    await w.reaper.sweepOnce();
    expect(w.jobs.get("job_b")!.state).toBe("expired");
    expect(w.unqueued).toEqual(["decode/job_b"]);
  });

  it("does not touch a job a worker is running, and looks again after recheckMs", async () => {
    const w = world();
    w.addJob("job_c", "sampling", { sample: "active" });
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 0, rechecks: 1 });
    expect(w.jobs.get("job_c")!.state).toBe("sampling");
    expect(w.due.get("job:job_c")!.at).toBe(NOW + 30_000);
  });

  it("drops finished jobs from the index without a transition", async () => {
    const w = world();
    w.addJob("job_d", "succeeded", {});
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 1, rechecks: 0 });
    expect(w.jobs.get("job_d")!.state).toBe("succeeded");
  });

  it("counts a batch's waiting shards as expired, waits for the held one, then finalizes once", async () => {
    const w = world();
    w.addBatch("batch_e", "running", [4, 4, 2]);
    w.queued.set("sampleShard/batch_e-s0", "removed");
    w.queued.set("decodeShard/batch_e-s1", "active");
    w.queued.set("sampleShard/batch_e-s2", "removed");
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 0, rechecks: 1 });
    expect(w.expiredUsers.get("batch_e")).toBe(6);
    expect(w.finalized).toEqual([]);
    // The worker handed its shard back before finishing (it waits again): next look takes it.
    w.queued.set("decodeShard/batch_e-s1", "removed");
    w.due.set("batch:batch_e", { o: { kind: "batch", tenant: "acme", id: "batch_e" }, at: NOW });
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 1, rechecks: 0 });
    expect(w.expiredUsers.get("batch_e")).toBe(10);
    expect(w.finalized).toEqual(["batch_e"]);
  });

  it("finalizes a batch whose shards workers all counted but whose finalize step nobody ran", async () => {
    const w = world();
    w.addBatch("batch_f", "running", [4]);
    w.shards.get("batch_f")![0]!.done = true;
    await w.reaper.sweepOnce();
    expect(w.finalized).toEqual(["batch_f"]);
    expect(w.expiredUsers.get("batch_f")).toBeUndefined();
  });

  it("waits for a batch still receiving users, and leaves cancelled batches to the cancel", async () => {
    const w = world();
    w.addBatch("batch_g", "receiving", [4]);
    w.addBatch("batch_h", "cancelled", [4]);
    expect(await w.reaper.sweepOnce()).toEqual({ settled: 1, rechecks: 1 });
    expect(w.expiredUsers.size).toBe(0);
    expect(w.finalized).toEqual([]);
  });

  it("handles at most maxItems per sweep", async () => {
    const w = world();
    for (let i = 0; i < 25; i++) w.addJob(`job_${i}`, "queued", { sample: "removed" });
    expect((await w.reaper.sweepOnce()).settled).toBe(10);
    expect(w.due.size).toBe(15);
  });
});
