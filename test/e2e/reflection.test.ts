import { execFileSync } from "node:child_process";
import { fromBinary, toJson, type DescMessage } from "@bufbuild/protobuf";
import { DescriptorProtoSchema, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "@rebeca/devstack";
import { BUF, bufCurl, compileProtos, rpcsOf } from "../support/buf-curl.js";
import { modelUserIds } from "../support/world.js";

/*
 * Server reflection as real tools use it: `buf curl` finds every service and message through the
 * gateway's reflection alone (no --schema) and calls every RPC declared under proto/, and the
 * messages reflection describes are the ones buf compiles from the .proto files.
 */
describe("server reflection with buf curl", () => {
  let stack: Stack;
  let base: string;
  let auth: Record<string, string>;
  const compiled = compileProtos();
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ services: ["gateway"] });
    base = `http://${stack.grpcAddress}`;
    auth = { authorization: `Bearer ${stack.tenants.acme!.apiKey}` };
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const call = (method: string, requests: object[], opts: Parameters<typeof bufCurl>[2] = {}) =>
    bufCurl(`${base}/${method}`, requests, { headers: auth, ...opts });
  /** The one response of a unary call that must succeed. */
  async function ok(method: string, request: object, args: string[] = []) {
    const result = await call(method, [request], { args });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return result.messages[0] as Record<string, any>;
  }

  it("lists the API, health and reflection services", () => {
    const listed = execFileSync(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", base], { encoding: "utf8" });
    const services = listed.trim().split("\n").sort();
    const api = [...new Set(rpcsOf(compiled).map((m) => m.parent.typeName))];
    expect(services).toEqual([...api, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"].sort());
  });

  it("calls every RPC declared under proto/ through reflection alone", async () => {
    const covered = new Set<string>();
    const rpc = (name: string) => (covered.add(name), name);

    const created = await ok(rpc("rebeca.v1.JobService/CreateJob"), { request_id: "buf-1", user_id: users[0], num_images: 1, labels: { via: "buf" } });
    const jobId = created.job.jobId as string;
    expect(created.job).toMatchObject({ state: "JOB_STATE_QUEUED", userId: users[0], labels: { via: "buf" } });
    expect((await ok(rpc("rebeca.v1.JobService/GetJob"), { job_id: jobId })).job.jobId).toBe(jobId);
    expect((await ok(rpc("rebeca.v1.JobService/ListJobs"), { labels: { via: "buf" } })).jobs.map((j: { jobId: string }) => j.jobId)).toEqual([jobId]);
    expect((await ok(rpc("rebeca.v1.JobService/CancelJob"), { job_id: jobId })).job.state).toBe("JOB_STATE_CANCELLED");
    const watched = await call(rpc("rebeca.v1.JobService/WatchEvents"), [{ job_id: jobId, after_event_id: "0" }], {
      until: (m) => (m.event as { type: string }).type === "job.cancelled",
    });
    expect(watched.messages.map((m) => (m.event as { type: string }).type)).toEqual(["job.queued", "job.cancelled"]);

    const streamed = await call(rpc("rebeca.v1.BatchService/CreateBatch"), [
      { parameters: { request_id: "buf-b", num_images: 1 } },
      { users: { offset: 0, user_ids: users.slice(0, 2) } },
      { users: { offset: 2, user_ids: users.slice(2, 3), last: true } },
    ]);
    expect(streamed.code).toBe(0);
    const batchId = (streamed.messages[0] as any).batch.batchId as string;
    expect((streamed.messages[0] as any).batch).toMatchObject({ state: "BATCH_STATE_RUNNING", receivedUsers: "3" });
    expect((await ok(rpc("rebeca.v1.BatchService/GetBatch"), { batch_id: batchId })).batch.counts.total).toBe("3");
    expect((await ok(rpc("rebeca.v1.BatchService/ListBatches"), {})).batches.map((b: { batchId: string }) => b.batchId)).toEqual([batchId]);
    expect((await ok(rpc("rebeca.v1.BatchService/CancelBatch"), { batch_id: batchId })).batch.state).toBe("BATCH_STATE_CANCELLED");
    // A manifest outside the tenant's prefix: the handler read the request and refused it.
    const manifest = await call(rpc("rebeca.v1.BatchService/CreateBatchFromManifest"), [
      { parameters: { request_id: "buf-m", num_images: 1 }, manifest_uri: "s3://elsewhere/ids.txt" },
    ]);
    expect(manifest.error).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("manifest_uri") });

    // RPCs other branches add: each must be served (reached its handler), whatever it answers.
    for (const method of rpcsOf(compiled)) {
      const name = `${method.parent.typeName}/${method.name}`;
      if (covered.has(name)) continue;
      const result = await call(name, [{}], { until: () => true });
      expect(result.stderr, name).not.toMatch(/failed to find|unimplemented/);
      covered.add(name);
    }
    expect([...covered].sort()).toEqual(
      rpcsOf(compiled)
        .map((m) => `${m.parent.typeName}/${m.name}`)
        .sort(),
    );
  });

  it("applies the same auth to calls found through reflection", async () => {
    const anonymous = await bufCurl(`${base}/rebeca.v1.JobService/GetJob`, [{ job_id: "job_x" }]);
    expect(anonymous.error?.code).toBe("unauthenticated");
  });

  it("answers grpc.health.v1 and the v1alpha reflection protocol", async () => {
    expect(await ok("grpc.health.v1.Health/Check", { service: "rebeca.v1.JobService" })).toEqual({ status: "SERVING" });
    const listed = await ok("rebeca.v1.JobService/ListJobs", {}, ["--reflect-protocol", "grpc-v1alpha"]);
    expect(listed).toHaveProperty("jobs");
  });

  it("describes every message exactly as buf compiles it from the .proto files", async () => {
    const messages: DescMessage[] = [...compiled.files].filter((f) => f.proto.name.startsWith("rebeca/")).flatMap((f) => f.messages);
    const result = await call(
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      messages.map((m) => ({ file_containing_symbol: m.typeName })),
    );
    expect(result.code).toBe(0);
    expect(result.messages).toHaveLength(messages.length);
    messages.forEach((message, i) => {
      const served = (result.messages[i] as any).fileDescriptorResponse.fileDescriptorProto.map((b64: string) =>
        fromBinary(FileDescriptorProtoSchema, Buffer.from(b64, "base64")),
      );
      // The first file declares the symbol; its imports follow.
      expect(served[0].name).toBe(message.file.proto.name);
      const describe = served[0].messageType.find((m: { name: string }) => m.name === message.name);
      expect(toJson(DescriptorProtoSchema, describe), message.typeName).toEqual(toJson(DescriptorProtoSchema, message.proto));
    });

    // The shapes the synthesized descriptor used to get wrong, spelled out.
    const request = messages.find((m) => m.typeName === "rebeca.v1.CreateJobRequest")!.proto;
    expect(request.field.map((f) => f.name)).toContain("request_id");
    expect(request.nestedType.map((n) => [n.name, n.options?.mapEntry])).toContainEqual(["LabelsEntry", true]);
    expect(request.field.find((f) => f.name === "guidance")!.proto3Optional).toBe(true);
  });
});
