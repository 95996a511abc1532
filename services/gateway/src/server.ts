import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { JobServiceService, type JobServiceServer } from "@rebeca/contracts/grpc";
import { BatchServiceService, type BatchServiceServer } from "@rebeca/contracts/grpc-batches";
import type { Descriptors } from "./descriptors.js";
import { ModelServiceService, type ModelServiceServer } from "@rebeca/contracts/grpc-models";
import { DataServiceService, type DataServiceServer } from "@rebeca/contracts/grpc-data";
import { tolerantService } from "./malformed.js";
import { addReflection } from "./reflection.js";
import { grpcServerCredentials, type TlsFiles } from "./tls.js";

export const JOB_SERVICE = "rebeca.v1.JobService";
export const BATCH_SERVICE = "rebeca.v1.BatchService";
export const MODEL_SERVICE = "rebeca.v1.ModelService";
export const DATA_SERVICE = "rebeca.v1.DataService";
const SERVICES = ["", JOB_SERVICE, BATCH_SERVICE, MODEL_SERVICE, DATA_SERVICE];

export interface GrpcServer {
  port: number;
  /** A plaintext listener on 127.0.0.1 for the gateway's own HTTP/JSON bridge (never exposed). */
  internalAddress: string;
  health: HealthImplementation;
  /** Stops taking calls, lets running ones finish up to `graceMs`, then cuts the rest. */
  drain(graceMs: number): Promise<void>;
}

/**
 * The gRPC server: JobService, BatchService, ModelService, grpc.health.v1 (overall and per service) and server
 * reflection.
 * `maxMessageBytes` bounds every request so a hostile client cannot make the gateway buffer a
 * large message.
 */
export async function startGrpcServer(opts: {
  host: string;
  port: number;
  /** The compiled protos, served by reflection. */
  descriptors: Descriptors;
  service: JobServiceServer;
  batchService: BatchServiceServer;
  modelService: ModelServiceServer;
  dataService: DataServiceServer;
  maxMessageBytes: number;
  /** Serve TLS (mutual with a client CA); plaintext when unset. */
  tls?: TlsFiles;
}): Promise<GrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": opts.maxMessageBytes,
    "grpc.keepalive_time_ms": 60_000,
  });
  // Undecodable request bytes reach the handlers as a marker (INVALID_ARGUMENT), not INTERNAL.
  server.addService(tolerantService(JobServiceService), opts.service);
  server.addService(tolerantService(BatchServiceService), opts.batchService);
  server.addService(tolerantService(ModelServiceService), opts.modelService);
  server.addService(tolerantService(DataServiceService), opts.dataService);
  const health = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, "NOT_SERVING" as const])));
  health.addToServer(server);
  addReflection(server, opts.descriptors);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, grpcServerCredentials(opts.tls), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const internalPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  for (const name of SERVICES) health.setStatus(name, "SERVING");

  return {
    port,
    internalAddress: `127.0.0.1:${internalPort}`,
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
