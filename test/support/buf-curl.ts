import { execFileSync, spawn } from "node:child_process";
import { createFileRegistry, fromBinary, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { REPO_ROOT } from "@rebeca/devstack";

/** The `buf` CLI of the @bufbuild/buf npm package (a root devDependency). */
export const BUF = `${REPO_ROOT}node_modules/.bin/buf`;

export interface BufCurlResult {
  /** Exit status: 0 on OK; buf prints a failed RPC's status as JSON on stderr. */
  code: number;
  /** The response messages, each parsed from its JSON document. */
  messages: Record<string, unknown>[];
  /** The RPC error ({ code: "invalid_argument", message, details }) when the call failed. */
  error?: { code: string; message: string; details?: unknown[] };
  stderr: string;
}

/**
 * Calls one RPC with `buf curl` over gRPC, the schema found through the server's reflection (no
 * --schema): what a new user of the API would type. `requests` are sent as a stream of JSON
 * documents (one for unary calls). `until` stops a server stream once a message satisfies it.
 */
export function bufCurl(
  url: string,
  requests: object[],
  opts: { headers?: Record<string, string>; args?: string[]; until?: (message: Record<string, unknown>) => boolean } = {},
): Promise<BufCurlResult> {
  const headers = Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const args = ["curl", "--protocol", "grpc", "--emit-defaults", ...headers, ...(opts.args ?? []), "-d", "@-", url];
  if (url.startsWith("http://")) args.splice(1, 0, "--http2-prior-knowledge");
  // Its own process group: BUF is a shell shim, and stopping a stream must stop the real binary too.
  const child = spawn(BUF, args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
  child.stdin.end(requests.map((r) => JSON.stringify(r)).join("\n"));
  let stdout = "";
  let stderr = "";
  const messages: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      // buf prints each message as an indented JSON document whose closing brace starts a line.
      for (let end = stdout.indexOf("\n}"); end >= 0; end = stdout.indexOf("\n}")) {
        const message = JSON.parse(stdout.slice(0, end + 2)) as Record<string, unknown>;
        stdout = stdout.slice(end + 2).replace(/^\s+/, "");
        messages.push(message);
        if (opts.until?.(message)) process.kill(-child.pid!, "SIGTERM");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      let error: BufCurlResult["error"];
      const json = stderr.slice(stderr.indexOf("{"));
      if (code !== 0 && json.startsWith("{")) error = JSON.parse(json) as BufCurlResult["error"];
      resolve({ code: code ?? -1, messages, error, stderr });
    });
  });
}

/** The repository's protos compiled by buf right now (what protoc would make of proto/). */
export function compileProtos(): FileRegistry {
  const bytes = execFileSync(BUF, ["build", `${REPO_ROOT}proto`, "-o", "-#format=binpb"], { maxBuffer: 64 << 20 });
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
}

/** Every RPC of every service declared under proto/ (services other branches add included). */
export function rpcsOf(registry: FileRegistry): DescMethod[] {
  return [...registry.files].filter((f) => f.proto.name.startsWith("rebeca/")).flatMap((f) => f.services.flatMap((s) => s.methods));
}
