import { Server, ServerCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { join } from "node:path";
import { JobServiceService, type JobServiceServer } from "@rebeca/contracts/grpc";
import { BatchServiceService, type BatchServiceServer } from "@rebeca/contracts/grpc-batches";
import { DataServiceService, type DataServiceServer } from "@rebeca/contracts/grpc-data";
import { tolerantService } from "./malformed.js";

export const JOB_SERVICE = "rebeca.v1.JobService";
export const BATCH_SERVICE = "rebeca.v1.BatchService";
export const DATA_SERVICE = "rebeca.v1.DataService";
const SERVICES = ["", JOB_SERVICE, BATCH_SERVICE, DATA_SERVICE];

export interface GrpcServer {
  port: number;
  health: HealthImplementation;
  /** Stops taking calls, lets running ones finish up to `graceMs`, then cuts the rest. */
  drain(graceMs: number): Promise<void>;
}

/**
 * The gRPC server: JobService, BatchService, grpc.health.v1 (overall and per service) and server
 * reflection.
 * `maxMessageBytes` bounds every request so a hostile client cannot make the gateway buffer a
 * large message.
 */
export async function startGrpcServer(opts: {
  host: string;
  port: number;
  protoDir: string;
  service: JobServiceServer;
  batchService: BatchServiceServer;
  dataService: DataServiceServer;
  maxMessageBytes: number;
}): Promise<GrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": opts.maxMessageBytes,
    "grpc.keepalive_time_ms": 60_000,
  });
  // Undecodable request bytes reach the handlers as a marker (INVALID_ARGUMENT), not INTERNAL.
  server.addService(tolerantService(JobServiceService), opts.service);
  server.addService(tolerantService(BatchServiceService), opts.batchService);
  server.addService(tolerantService(DataServiceService), opts.dataService);
  const health = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, "NOT_SERVING" as const])));
  health.addToServer(server);
  const definition = loadSync(
    ["rebeca/v1/jobs.proto", "rebeca/v1/batches.proto", "rebeca/v1/data.proto"].map((f) => join(opts.protoDir, f)),
    { includeDirs: [opts.protoDir] },
  );
  new ReflectionService(definition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  for (const name of SERVICES) health.setStatus(name, "SERVING");

  return {
    port,
    health,
    async drain(graceMs: number) {
      for (const name of SERVICES) health.setStatus(name, "NOT_SERVING");
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
