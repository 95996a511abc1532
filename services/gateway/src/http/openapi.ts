import type { DescEnum, DescField, DescMessage, DescService } from "@bufbuild/protobuf";
import type { Descriptors } from "../descriptors.js";
import { routesOf } from "./bridge.js";

type Schema = Record<string, unknown>;

/** Schema of one scalar in proto3 JSON: 64-bit integers are strings, floats may be "NaN". */
function scalarSchema(scalar: number): Schema {
  // ScalarType numbers (google/protobuf/descriptor.proto FieldDescriptorProto.Type).
  switch (scalar) {
    case 1:
    case 2:
      return { type: "number" };
    case 3:
    case 4:
    case 6:
    case 16:
    case 18:
      return { type: "string", format: "int64" };
    case 5:
    case 15:
    case 17:
      return { type: "integer", format: "int32" };
    case 7:
    case 13:
      return { type: "integer", format: "uint32" };
    case 8:
      return { type: "boolean" };
    case 12:
      return { type: "string", format: "byte" };
    default:
      return { type: "string" };
  }
}

const ref = (desc: DescMessage | DescEnum) => ({ $ref: `#/components/schemas/${desc.typeName}` });

function fieldSchema(field: DescField): Schema {
  switch (field.fieldKind) {
    case "scalar":
      return scalarSchema(field.scalar);
    case "enum":
      return ref(field.enum);
    case "message":
      return ref(field.message);
    case "list":
      return {
        type: "array",
        items: field.listKind === "scalar" ? scalarSchema(field.scalar) : field.listKind === "enum" ? ref(field.enum) : ref(field.message),
      };
    case "map":
      return {
        type: "object",
        additionalProperties: field.mapKind === "scalar" ? scalarSchema(field.scalar) : field.mapKind === "enum" ? ref(field.enum) : ref(field.message),
      };
  }
}

/** The leading comment of a declaration, from the source info buf keeps in the descriptor set. */
function commentOf(desc: { file: { proto: { sourceCodeInfo?: { location: { path: number[]; leadingComments?: string }[] } } } }, path: number[]) {
  const location = desc.file.proto.sourceCodeInfo?.location.find((l) => l.path.length === path.length && l.path.every((p, i) => p === path[i]));
  return location?.leadingComments?.trim().replace(/\n /g, "\n") || undefined;
}

/** Path of a message/enum/service/method in its file (the SourceCodeInfo convention). */
function pathOf(desc: DescMessage | DescEnum | DescService): number[] {
  if (desc.kind === "service") return [6, desc.file.services.indexOf(desc)];
  const own = desc.kind === "message" ? 4 : 5;
  const nestedOwn = desc.kind === "message" ? 3 : 4;
  if (!desc.parent) return [own, (desc.kind === "message" ? desc.file.messages : desc.file.enums).indexOf(desc as never)];
  return [...pathOf(desc.parent), nestedOwn, (desc.kind === "message" ? desc.parent.nestedMessages : desc.parent.nestedEnums).indexOf(desc as never)];
}

function messageSchema(message: DescMessage): Schema {
  const properties: Record<string, Schema> = {};
  const messagePath = pathOf(message);
  message.fields.forEach((field) => {
    const description = commentOf(message, [...messagePath, 2, message.proto.field.indexOf(field.proto)]);
    properties[field.jsonName] = { ...fieldSchema(field), ...(description ? { description } : {}) };
  });
  const description = commentOf(message, messagePath);
  return { type: "object", ...(description ? { description } : {}), properties };
}

/** Every message and enum a set of messages reaches through its fields. */
function reachable(roots: DescMessage[]): (DescMessage | DescEnum)[] {
  const seen = new Map<string, DescMessage | DescEnum>();
  const visit = (desc: DescMessage | DescEnum) => {
    if (seen.has(desc.typeName)) return;
    seen.set(desc.typeName, desc);
    if (desc.kind === "enum") return;
    for (const f of desc.fields) {
      if (f.enum) visit(f.enum);
      if (f.message) visit(f.message);
    }
  };
  roots.forEach(visit);
  return [...seen.values()].sort((a, b) => a.typeName.localeCompare(b.typeName));
}

const STATUS_SCHEMA: Schema = {
  type: "object",
  description: "google.rpc.Status: the gRPC code, a message, and details such as google.rpc.BadRequest field violations or google.rpc.RetryInfo.",
  properties: {
    code: { type: "integer", format: "int32" },
    message: { type: "string" },
    details: { type: "array", items: { type: "object", properties: { "@type": { type: "string" } }, additionalProperties: true } },
  },
};

/**
 * The OpenAPI 3.1 document of the HTTP/JSON bridge, generated from the descriptors: one POST
 * operation per RPC (the routes the bridge serves), request and response schemas in proto3 JSON,
 * errors as google.rpc.Status, bearer-key auth.
 */
export function openapiOf(descriptors: Descriptors, info: { title: string; version: string }): object {
  const paths: Record<string, unknown> = {};
  const roots: DescMessage[] = [];
  for (const [path, method] of routesOf(descriptors)) {
    roots.push(method.input, method.output);
    const streamsIn = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
    const streamsOut = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
    const description = commentOf(method.parent, [...pathOf(method.parent), 2, method.parent.methods.indexOf(method)]);
    paths[path] = {
      post: {
        operationId: `${method.parent.name}_${method.name}`,
        tags: [method.parent.typeName],
        ...(description ? { description } : {}),
        requestBody: {
          required: true,
          content: {
            [streamsIn ? "application/jsonl" : "application/json"]: {
              schema: ref(method.input),
              ...(streamsIn ? { description: "one message per line" } : {}),
            },
          },
        },
        responses: {
          "200": {
            description: streamsOut ? "server-sent events, each `data:` one message" : "OK",
            content: { [streamsOut ? "text/event-stream" : "application/json"]: { schema: ref(method.output) } },
          },
          default: { description: "error", content: { "application/json": { schema: { $ref: "#/components/schemas/google.rpc.Status" } } } },
        },
      },
    };
  }
  const schemas: Record<string, Schema> = { "google.rpc.Status": STATUS_SCHEMA };
  for (const desc of reachable(roots)) {
    schemas[desc.typeName] =
      desc.kind === "enum"
        ? { type: "string", enum: desc.values.map((v) => v.name), ...(commentOf(desc, pathOf(desc)) ? { description: commentOf(desc, pathOf(desc)) } : {}) }
        : messageSchema(desc);
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: { schemas, securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "authorization: Bearer <api key>" } } },
    security: [{ apiKey: [] }],
  };
}

/** The document's title and version (the API's package version). */
export const OPENAPI_INFO = { title: "Rebeca HTTP/JSON API", version: "v1" };
