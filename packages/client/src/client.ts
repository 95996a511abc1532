import { Metadata, type ServiceError, type ClientReadableStream } from "@grpc/grpc-js";
import { channelCredentials, type ClientOptions } from "./credentials.js";
import {
  JobServiceClient,
  type CreateJobRequest,
  type CreateJobResponse,
  type GetJobResponse,
  type ListJobsRequest,
  type ListJobsResponse,
  type CancelJobResponse,
  type WatchEventsRequest,
  type WatchEventsResponse,
} from "@rebeca/contracts/grpc";
import { BatchServiceClient, type Batch, type BatchParameters, type CreateBatchResponse, type UserChunk } from "@rebeca/contracts/grpc-batches";

export { channelCredentials, tlsFromFiles, type ClientOptions, type ClientTls } from "./credentials.js";

/** A promise-based JobService client bound to one API key. */
export function createJobClient(address: string, apiKey: string | null, opts: ClientOptions = {}) {
  const client = new JobServiceClient(address, channelCredentials(opts));
  const md = (extra: Record<string, string> = {}) => {
    const m = new Metadata();
    if (apiKey !== null) m.set("authorization", `Bearer ${apiKey}`);
    for (const [k, v] of Object.entries(extra)) m.set(k, v);
    return m;
  };
  function call<Req, Res>(fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res>;
  function call<Req, Res>(
    fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown,
    metadata: Metadata,
    req: Req,
  ): Promise<Res>;
  function call<Req, Res>(fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown, a: Metadata | Req, b?: Req): Promise<Res> {
    const [metadata, req] = a instanceof Metadata ? [a, b as Req] : [md(), a];
    return new Promise<Res>((resolve, reject) => fn.call(client, req, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  }
  return {
    raw: client,
    createJob: (req: Partial<CreateJobRequest>, opts: { traceparent?: string } = {}) =>
      call<CreateJobRequest, CreateJobResponse>(client.createJob, opts.traceparent ? md({ traceparent: opts.traceparent }) : md(), {
        requestId: "",
        userId: "",
        numImages: 1,
        sampler: 0,
        spacing: 0,
        modelVersion: "",
        priority: 0,
        labels: {},
        callbackUrl: "",
        callbackEvents: [],
        unknownUser: 0,
        startAfter: "",
        deadline: "",
        outputTtl: "",
        ...req,
      }),
    getJob: (jobId: string) => call<{ jobId: string }, GetJobResponse>(client.getJob, { jobId }),
    listJobs: (req: Partial<ListJobsRequest>) =>
      call<ListJobsRequest, ListJobsResponse>(client.listJobs, { pageSize: 0, pageToken: "", state: 0, userId: "", labels: {}, ...req }),
    cancelJob: (jobId: string) => call<{ jobId: string }, CancelJobResponse>(client.cancelJob, { jobId }),
    watchEvents: (req: Partial<WatchEventsRequest>): ClientReadableStream<WatchEventsResponse> =>
      client.watchEvents({ afterEventId: "", jobId: "", batchId: "", labels: {}, types: [], ...req }, md()),
    close: () => client.close(),
  };
}
export type JobClient = ReturnType<typeof createJobClient>;

/** A promise-based BatchService client bound to one API key. */
export function createBatchClient(address: string, apiKey: string | null, opts: ClientOptions = {}) {
  const client = new BatchServiceClient(address, channelCredentials(opts), { "grpc.max_send_message_length": 8 * 1024 * 1024 });
  const md = (traceparent?: string) => {
    const m = new Metadata();
    if (apiKey !== null) m.set("authorization", `Bearer ${apiKey}`);
    if (traceparent) m.set("traceparent", traceparent);
    return m;
  };
  const params = (p: Partial<BatchParameters>): BatchParameters => ({
    requestId: "",
    numImages: 1,
    sampler: 0,
    spacing: 0,
    modelVersion: "",
    priority: 0,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: 0,
    startAfter: "",
    deadline: "",
    outputTtl: "",
    ...p,
  });
  return {
    raw: client,
    /**
     * Streams the parameters then `chunks` (an iterable, so a caller can stop early to simulate a
     * broken connection by passing `abortAfter`).
     */
    createBatch(
      p: Partial<BatchParameters>,
      chunks: Iterable<UserChunk> | AsyncIterable<UserChunk>,
      opts: { abortAfter?: number; beforeAbort?: () => Promise<void>; traceparent?: string } = {},
    ): Promise<Batch> {
      return new Promise<Batch>((resolve, reject) => {
        const call = client.createBatch(md(opts.traceparent), (err: ServiceError | null, res?: CreateBatchResponse) =>
          err ? reject(err) : resolve(res!.batch!),
        );
        void (async () => {
          call.write({ parameters: params(p) });
          let sent = 0;
          for await (const chunk of chunks as AsyncIterable<UserChunk>) {
            if (opts.abortAfter !== undefined && sent === opts.abortAfter) {
              await opts.beforeAbort?.();
              call.cancel();
              return;
            }
            // Respect flow control: wait for the stream to drain before writing more.
            if (!call.write({ users: chunk })) await new Promise((r) => call.once("drain", r));
            sent++;
          }
          call.end();
        })().catch(reject);
      });
    },
    createBatchFromManifest: (p: Partial<BatchParameters>, manifestUri: string) =>
      new Promise<Batch>((resolve, reject) =>
        client.createBatchFromManifest({ parameters: params(p), manifestUri }, md(), (err: ServiceError | null, res?: { batch?: Batch }) =>
          err ? reject(err) : resolve(res!.batch!),
        ),
      ),
    getBatch: (batchId: string) =>
      new Promise<Batch>((resolve, reject) =>
        client.getBatch({ batchId }, md(), (err: ServiceError | null, res?: { batch?: Batch }) => (err ? reject(err) : resolve(res!.batch!))),
      ),
    listBatches: (pageSize = 20, pageToken = "") =>
      new Promise<{ batches: Batch[]; nextPageToken: string }>((resolve, reject) =>
        client.listBatches({ pageSize, pageToken }, md(), (err: ServiceError | null, res?: { batches: Batch[]; nextPageToken: string }) =>
          err ? reject(err) : resolve(res!),
        ),
      ),
    cancelBatch: (batchId: string) =>
      new Promise<Batch>((resolve, reject) =>
        client.cancelBatch({ batchId }, md(), (err: ServiceError | null, res?: { batch?: Batch }) => (err ? reject(err) : resolve(res!.batch!))),
      ),
    close: () => client.close(),
  };
}
export type BatchClient = ReturnType<typeof createBatchClient>;

/** Chunks of `size` ids from `ids`, starting at `from`; the final one is marked last. */
export function* chunksOf(ids: string[], size: number, from = 0): Generator<UserChunk> {
  if (ids.length === from) yield { offset: from, userIds: [], last: true };
  for (let i = from; i < ids.length; i += size) yield { offset: i, userIds: ids.slice(i, i + size), last: i + size >= ids.length };
}

export { createModelClient, type ModelClient } from "./model-client.js";
export * from "./data-client.js";
