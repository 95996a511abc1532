import type { ServiceDefinition } from "@grpc/grpc-js";
import { ValidationError } from "./validate.js";

/**
 * Stands in for a request message whose bytes did not decode (truncated, wrong wire types, an int64
 * past 2^53). grpc-js answers a deserializer that throws with INTERNAL before any handler runs;
 * handing the handler this marker instead lets the edge authenticate first and then answer
 * INVALID_ARGUMENT, the code for a bad request.
 */
export class MalformedMessage {
  constructor(readonly reason: string) {}
}

/** The same service with deserializers that return {@link MalformedMessage} instead of throwing. */
export function tolerantService<D extends ServiceDefinition>(definition: D): D {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return new MalformedMessage((err as Error).message);
        }
      },
    };
  }
  return out as D;
}

/** The message itself, or INVALID_ARGUMENT when its bytes did not decode. */
export function wellFormed<T>(message: T | MalformedMessage, field = "request"): T {
  if (message instanceof MalformedMessage)
    throw new ValidationError([{ field, description: "not a valid protobuf encoding of this method's request message" }]);
  return message;
}
