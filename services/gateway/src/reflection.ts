import { status, type Server, type ServerDuplexStream, type ServiceDefinition } from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescFile, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Descriptors } from "./descriptors.js";

/**
 * Server reflection (grpc.reflection.v1 and v1alpha, which share one wire format) answered from
 * the compiled descriptor set, so tools see the real files: `rebeca/v1/jobs.proto` with its
 * snake_case fields, `LabelsEntry` map entries and proto3 `optional` flags, exactly as protoc
 * describes them. Every service of the set is listed, health and reflection included.
 */
export function addReflection(server: Server, descriptors: Descriptors): void {
  const requestSchema = descriptors.registry.getMessage("grpc.reflection.v1.ServerReflectionRequest")!;
  const responseSchema = descriptors.registry.getMessage("grpc.reflection.v1.ServerReflectionResponse")!;
  const answer = createReflectionAnswerer(descriptors, responseSchema);
  for (const version of ["v1", "v1alpha"]) {
    const definition: ServiceDefinition = {
      ServerReflectionInfo: {
        path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        requestStream: true,
        responseStream: true,
        requestSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(requestSchema, m)),
        requestDeserialize: (b: Buffer) => fromBinary(requestSchema, b),
        responseSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(responseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(responseSchema, b),
      },
    };
    server.addService(definition, {
      ServerReflectionInfo: (call: ServerDuplexStream<MessageShape<DescMessage>, MessageShape<DescMessage>>) => {
        call.on("data", (request: MessageShape<DescMessage>) => call.write(answer(request)));
        call.on("end", () => call.end());
        call.on("error", () => call.end());
      },
    });
  }
}

/** The message_response oneof of one reflection request (pure: descriptors in, response out). */
export function createReflectionAnswerer(descriptors: Descriptors, responseSchema: DescMessage) {
  const serviceNames = [...descriptors.services.keys()].sort();

  /** The file and every file it imports, transitively, each once, serialized. */
  function withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      f.dependencies.forEach(visit);
    };
    visit(file);
    return out;
  }

  /** The file declaring a symbol: a type, a service, or a member of one (method, field, value). */
  function fileOfSymbol(symbol: string): DescFile | undefined {
    const found = descriptors.registry.get(symbol);
    if (found) return found.file;
    const dot = symbol.lastIndexOf(".");
    return dot > 0 ? fileOfSymbol(symbol.slice(0, dot)) : undefined;
  }

  const notFound = (message: string) => ({ case: "errorResponse", value: { errorCode: status.NOT_FOUND, errorMessage: message } });
  const files = (file: DescFile | undefined, what: string) =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } } : notFound(`${what} not found`);

  function respond(request: { case?: string; value?: unknown }) {
    switch (request.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return files(descriptors.registry.getFile(request.value as string), `file ${String(request.value)}`);
      case "fileContainingSymbol":
        return files(fileOfSymbol(request.value as string), `symbol ${String(request.value)}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = request.value as { containingType: string; extensionNumber: number };
        const ext = [...descriptors.registry].find((d) => d.kind === "extension" && d.extendee.typeName === containingType && d.number === extensionNumber);
        return files(ext?.file, `extension ${extensionNumber} of ${containingType}`);
      }
      case "allExtensionNumbersOfType": {
        const type = request.value as string;
        if (!descriptors.registry.getMessage(type)) return notFound(`type ${type} not found`);
        const numbers = [...descriptors.registry].flatMap((d) => (d.kind === "extension" && d.extendee.typeName === type ? [d.number] : []));
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: type, extensionNumber: numbers } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "empty or unknown reflection request" } };
    }
  }

  return (request: MessageShape<DescMessage>) => {
    const fields = request as unknown as { host: string; messageRequest: { case?: string; value?: unknown } };
    return create(responseSchema, {
      validHost: fields.host,
      originalRequest: request,
      messageResponse: respond(fields.messageRequest),
    } as never);
  };
}
