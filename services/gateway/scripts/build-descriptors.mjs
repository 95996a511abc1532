#!/usr/bin/env node
/**
 * Compiles every .proto the gateway serves into one FileDescriptorSet (gen/descriptors.binpb):
 * the repository's proto/ tree plus grpc.health.v1 and grpc.reflection (v1, v1alpha) from the npm
 * packages that implement them. Server reflection serves these descriptors as buf compiled them
 * (file names, field names, map entries, proto3 optionals exactly as protoc describes them), and
 * the HTTP/JSON bridge reads its schemas from the same file.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`));

const stage = mkdtempSync(join(tmpdir(), "rebeca-descriptors-"));
try {
  cpSync(join(here, "../../../proto"), stage, { recursive: true });
  // The health package ships its proto as health/v1/health.proto; protoc's canonical name is
  // grpc/health/v1/health.proto (what grpcurl and buf expect to find).
  mkdirSync(join(stage, "grpc/health/v1"), { recursive: true });
  cpSync(join(packageDir("grpc-health-check"), "proto/health/v1/health.proto"), join(stage, "grpc/health/v1/health.proto"));
  for (const version of ["v1", "v1alpha"]) {
    const file = `grpc/reflection/${version}/reflection.proto`;
    mkdirSync(join(stage, dirname(file)), { recursive: true });
    cpSync(join(packageDir("@grpc/reflection"), "build/proto", file), join(stage, file));
  }
  const out = join(here, "../gen/descriptors.binpb");
  mkdirSync(dirname(out), { recursive: true });
  // @bufbuild/buf is a devDependency of the workspace root.
  execFileSync(join(here, "../../../node_modules/.bin/buf"), ["build", stage, "-o", out], { stdio: "inherit" });
} finally {
  rmSync(stage, { recursive: true, force: true });
}
