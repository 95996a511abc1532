import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, type DescService, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

/** Where the build (scripts/build-descriptors.mjs) writes the compiled protos. */
export const defaultDescriptorSetFile = fileURLToPath(new URL("../gen/descriptors.binpb", import.meta.url));

/** The compiled protos the gateway serves: the raw files (for reflection) and a registry over them. */
export interface Descriptors {
  /** Every file of the set, by its proto path (e.g. `rebeca/v1/jobs.proto`). */
  files: ReadonlyMap<string, FileDescriptorProto>;
  registry: FileRegistry;
  /** Every service of every file, by full name. */
  services: ReadonlyMap<string, DescService>;
}

/** Reads a FileDescriptorSet (as `buf build -o x.binpb` writes it). */
export function loadDescriptors(path: string = defaultDescriptorSetFile): Descriptors {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the descriptor set ${path} (built by \`pnpm run build\`): ${(err as Error).message}`);
  }
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  const registry = createFileRegistry(set);
  const services = new Map<string, DescService>();
  for (const file of registry.files) for (const service of file.services) services.set(service.typeName, service);
  return { files: new Map(set.file.map((f) => [f.name, f])), registry, services };
}
