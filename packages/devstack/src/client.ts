import { credentials, Metadata, type ServiceError, type ClientReadableStream } from "@grpc/grpc-js";
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

/** A promise-based JobService client bound to one API key. */
export function createJobClient(address: string, apiKey: string | null) {
  const client = new JobServiceClient(address, credentials.createInsecure());
  const md = () => {
    const m = new Metadata();
    if (apiKey !== null) m.set("authorization", `Bearer ${apiKey}`);
    return m;
  };
  const call = <Req, Res>(fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req) =>
    new Promise<Res>((resolve, reject) => fn.call(client, req, md(), (err, res) => (err ? reject(err) : resolve(res))));
  return {
    raw: client,
    createJob: (req: Partial<CreateJobRequest>) =>
      call<CreateJobRequest, CreateJobResponse>(client.createJob, { requestId: "", userId: "", numImages: 1, sampler: 0, modelVersion: "", priority: 0, labels: {}, callbackUrl: "", callbackEvents: [], unknownUser: 0, ...req }),
    getJob: (jobId: string) => call<{ jobId: string }, GetJobResponse>(client.getJob, { jobId }),
    listJobs: (req: Partial<ListJobsRequest>) => call<ListJobsRequest, ListJobsResponse>(client.listJobs, { pageSize: 0, pageToken: "", state: 0, userId: "", labels: {}, ...req }),
    cancelJob: (jobId: string) => call<{ jobId: string }, CancelJobResponse>(client.cancelJob, { jobId }),
    watchEvents: (req: Partial<WatchEventsRequest>): ClientReadableStream<WatchEventsResponse> =>
      client.watchEvents({ afterEventId: "", jobId: "", batchId: "", labels: {}, types: [], ...req }, md()),
    close: () => client.close(),
  };
}
export type JobClient = ReturnType<typeof createJobClient>;
