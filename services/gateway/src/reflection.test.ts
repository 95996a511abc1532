import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { loadDescriptors } from "./descriptors.js";
import { createReflectionAnswerer } from "./reflection.js";

const descriptors = loadDescriptors();
const responseSchema = descriptors.registry.getMessage("grpc.reflection.v1.ServerReflectionResponse")!;
const answer = createReflectionAnswerer(descriptors, responseSchema);
/** The message_response of one request given as its oneof case and value. */
const ask = (kind: string, value: unknown) => (answer({ host: "", messageRequest: { case: kind, value } } as never) as any).messageResponse;
const fileNames = (response: any) => response.value.fileDescriptorProto.map((b: Uint8Array) => fromBinary(FileDescriptorProtoSchema, b).name);

describe("reflection answers", () => {
  it("lists the API, health and both reflection services", () => {
    const names = ask("listServices", "").value.service.map((s: { name: string }) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "rebeca.v1.JobService",
        "rebeca.v1.BatchService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
  });

  it("finds the file of a type, a service, a method or a field, with the files it imports", () => {
    expect(fileNames(ask("fileContainingSymbol", "rebeca.v1.CreateBatchRequest"))).toEqual(["rebeca/v1/batches.proto", "rebeca/v1/jobs.proto"]);
    expect(fileNames(ask("fileContainingSymbol", "rebeca.v1.JobService.CreateJob"))).toEqual(["rebeca/v1/jobs.proto"]);
    expect(fileNames(ask("fileContainingSymbol", "rebeca.v1.Job.labels"))).toEqual(["rebeca/v1/jobs.proto"]);
    expect(fileNames(ask("fileByFilename", "grpc/health/v1/health.proto"))).toEqual(["grpc/health/v1/health.proto"]);
  });

  it("answers NOT_FOUND for what it does not have, INVALID_ARGUMENT for an empty request", () => {
    expect(ask("fileByFilename", "rebeca_v1.proto")).toMatchObject({ case: "errorResponse", value: { errorCode: status.NOT_FOUND } });
    expect(ask("fileContainingSymbol", "rebeca.v1.Nope")).toMatchObject({ case: "errorResponse", value: { errorCode: status.NOT_FOUND } });
    expect(ask("allExtensionNumbersOfType", "rebeca.v1.Job")).toMatchObject({ case: "allExtensionNumbersResponse", value: { extensionNumber: [] } });
    expect(ask(undefined as never, undefined)).toMatchObject({ case: "errorResponse", value: { errorCode: status.INVALID_ARGUMENT } });
  });
});
