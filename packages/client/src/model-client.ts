import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  ModelServiceClient,
  type GetTrafficPolicyResponse,
  type ListModelEventsResponse,
  type ListModelsResponse,
  type PromoteRequest,
  type PromoteResponse,
  type RollbackRequest,
  type RollbackResponse,
  type SetCanaryRequest,
  type SetCanaryResponse,
} from "@rebeca/contracts/grpc-models";

/** A promise-based ModelService client bound to one API key (it manages that key's tenant). */
export function createModelClient(address: string, apiKey: string | null) {
  const client = new ModelServiceClient(address, credentials.createInsecure());
  const md = () => {
    const m = new Metadata();
    if (apiKey !== null) m.set("authorization", `Bearer ${apiKey}`);
    return m;
  };
  const call = <Req, Res>(fn: (req: Req, md: Metadata, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req) =>
    new Promise<Res>((resolve, reject) => fn.call(client, req, md(), (err, res) => (err ? reject(err) : resolve(res))));
  return {
    listModels: () => call<object, ListModelsResponse>(client.listModels, {}),
    getTrafficPolicy: () => call<object, GetTrafficPolicyResponse>(client.getTrafficPolicy, {}),
    setCanary: (candidate: string, weightPercent: number, reason = "") =>
      call<SetCanaryRequest, SetCanaryResponse>(client.setCanary, { candidate, weightPercent, reason }),
    promote: (version = "", reason = "") => call<PromoteRequest, PromoteResponse>(client.promote, { version, reason }),
    rollback: (reason = "") => call<RollbackRequest, RollbackResponse>(client.rollback, { reason }),
    listModelEvents: (pageSize = 20) => call<{ pageSize: number }, ListModelEventsResponse>(client.listModelEvents, { pageSize }),
    close: () => client.close(),
  };
}
export type ModelClient = ReturnType<typeof createModelClient>;
