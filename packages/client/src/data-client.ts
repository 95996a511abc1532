import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { channelCredentials, type ClientOptions } from "./credentials.js";
import {
  DataServiceClient,
  type DeleteUserDataRequest,
  type DeleteUserDataResponse,
  type GetUsageResponse,
  type GetUserDataDeletionResponse,
} from "@rebeca/contracts/grpc-data";

/** A promise-based DataService client (erasure, usage) bound to one API key. */
export function createDataClient(address: string, apiKey: string | null, opts: ClientOptions = {}) {
  const client = new DataServiceClient(address, channelCredentials(opts));
  const md = () => {
    const m = new Metadata();
    if (apiKey !== null) m.set("authorization", `Bearer ${apiKey}`);
    return m;
  };
  const call = <Req, Res>(fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> =>
    new Promise<Res>((resolve, reject) => fn.call(client, req, md(), (err, res) => (err ? reject(err) : resolve(res))));
  return {
    deleteUserData: (req: Partial<DeleteUserDataRequest>) =>
      call<DeleteUserDataRequest, DeleteUserDataResponse>(client.deleteUserData, {
        requestId: "",
        userIds: [],
        manifestUri: "",
        afterErasure: 0,
        callbackUrl: "",
        ...req,
      }),
    getUserDataDeletion: (deletionId: string) => call<{ deletionId: string }, GetUserDataDeletionResponse>(client.getUserDataDeletion, { deletionId }),
    getUsage: (startDay = "", endDay = "") => call<{ startDay: string; endDay: string }, GetUsageResponse>(client.getUsage, { startDay, endDay }),
    close: () => client.close(),
  };
}
export type DataClient = ReturnType<typeof createDataClient>;
