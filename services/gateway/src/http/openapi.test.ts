import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadDescriptors } from "../descriptors.js";
import { routesOf } from "./bridge.js";
import { OPENAPI_INFO, openapiOf } from "./openapi.js";

const descriptors = loadDescriptors();
const doc = openapiOf(descriptors, OPENAPI_INFO) as { paths: Record<string, any>; components: { schemas: Record<string, any> } };

describe("HTTP/JSON mapping and its OpenAPI document", () => {
  it("maps every RPC of every API service (services other branches add included)", () => {
    const rpcs = [...descriptors.services.values()]
      .filter((s) => s.typeName.startsWith("rebeca."))
      .flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`))
      .sort();
    expect(rpcs).toContain("/rebeca.v1.JobService/CreateJob");
    expect([...routesOf(descriptors).keys()].sort()).toEqual(rpcs);
    expect(Object.keys(doc.paths).sort()).toEqual(rpcs);
  });

  it("describes requests in proto3 JSON: maps, 64-bit strings, enums by name, streams", () => {
    const request = doc.components.schemas["rebeca.v1.CreateJobRequest"];
    expect(request.properties.labels).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
    expect(request.properties.requestId.description).toContain("idempotency key");
    expect(doc.components.schemas["rebeca.v1.Output"].properties.bytes).toEqual({ type: "string", format: "int64" });
    expect(doc.components.schemas["rebeca.v1.JobState"].enum).toContain("JOB_STATE_SUCCEEDED");
    expect(Object.keys(doc.paths["/rebeca.v1.JobService/WatchEvents"].post.responses["200"].content)).toEqual(["text/event-stream"]);
    expect(Object.keys(doc.paths["/rebeca.v1.BatchService/CreateBatch"].post.requestBody.content)).toEqual(["application/jsonl"]);
  });

  it("is published in docs/openapi.json as generated (run `node services/gateway/dist/http/write-openapi.js`)", () => {
    const published = JSON.parse(readFileSync(new URL("../../../../docs/openapi.json", import.meta.url), "utf8"));
    expect(published).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});
