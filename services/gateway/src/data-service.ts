/**
 * rebeca.v1.DataService: user-data erasure (DeleteUserData, GetUserDataDeletion) and usage
 * (GetUsage). The erasure runs in the data worker (@rebeca/userdata); this edge validates, stores
 * the erasure with its user list, and enqueues it.
 */
import { status } from "@grpc/grpc-js";
import { isId, newId, type AfterErasure, type ErasureRecord, type ErasureState, type JobSink } from "@rebeca/contracts";
import { AfterErasure as ProtoAfterErasure, UserDataDeletionState, type DataServiceServer, type UserDataDeletion } from "@rebeca/contracts/grpc-data";
import type { Logger } from "@rebeca/platform";
import { assertSafeKey, type BlobStore } from "@rebeca/storage";
import { dayOf, daysBetween, type ErasureStore, type UsageStore } from "@rebeca/userdata";
import { RpcError } from "./errors.js";
import { splitLines } from "./manifest-lines.js";
import type { GatewayMetrics } from "./metrics.js";
import type { Authenticate, CallbackUrlGuard } from "./ports.js";
import { createRpcEdge } from "./rpc.js";
import { ValidationError, type FieldViolation } from "./validate.js";

export interface DataServiceDeps {
  authenticate: Authenticate;
  metrics: GatewayMetrics;
  log: Logger;
  erasures: Pick<ErasureStore, "create" | "get">;
  usage: Pick<UsageStore, "read">;
  jobs: JobSink;
  /** Reads manifests of user ids; keys are checked against the tenant prefix first. */
  blobs: Pick<BlobStore, "getStream">;
  bucket: string;
  maxManifestBytes: number;
  callbackGuard: CallbackUrlGuard;
  /** Most users one DeleteUserData names inline (more go in a manifest). @default 10000 */
  maxInlineUsers?: number;
  /** Most users one erasure covers (the gateway holds the manifest's ids while it stores them). @default 1000000 */
  maxUsersPerErasure?: number;
}

const REQUEST_ID = /^[\x21-\x7e]{1,36}$/;
const USER_ID = /^[\x21-\x7e]{1,128}$/;

const STATE: Record<ErasureState, UserDataDeletionState> = {
  running: UserDataDeletionState.USER_DATA_DELETION_STATE_RUNNING,
  succeeded: UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED,
  failed: UserDataDeletionState.USER_DATA_DELETION_STATE_FAILED,
};

function toProtoDeletion(r: ErasureRecord): UserDataDeletion {
  return {
    deletionId: r.erasureId,
    requestId: r.requestId,
    state: STATE[r.state],
    afterErasure: r.afterErasure === "population" ? ProtoAfterErasure.AFTER_ERASURE_POPULATION : ProtoAfterErasure.AFTER_ERASURE_REJECT,
    totalUsers: r.totalUsers,
    doneUsers: r.doneUsers,
    counts: { ...r.counts },
    createTime: r.createTime,
    endTime: r.endTime,
    error: r.error,
  };
}

export function createDataService(deps: DataServiceDeps): DataServiceServer {
  const { unary } = createRpcEdge(deps);
  const maxInline = deps.maxInlineUsers ?? 10_000;
  const maxUsers = deps.maxUsersPerErasure ?? 1_000_000;

  /** The user ids of a manifest under the tenant's prefix (one per line, blank lines skipped). */
  async function manifestUsers(tenant: string, uri: string): Promise<string[]> {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    const key = m?.[2] ?? "";
    let safe = true;
    try {
      assertSafeKey(key);
    } catch {
      safe = false;
    }
    // Another tenant's object is refused by its name before anything is read.
    if (!m || m[1] !== deps.bucket || !key.startsWith(`tenants/${tenant}/`) || !safe)
      throw new ValidationError([{ field: "manifest_uri", description: `must be s3://${deps.bucket}/tenants/${tenant}/...` }]);
    let stream;
    try {
      stream = await deps.blobs.getStream(key, { maxBytes: deps.maxManifestBytes });
    } catch (err) {
      if ((err as Error).name === "BlobNotFoundError") throw new RpcError(status.NOT_FOUND, `manifest ${uri} not found`);
      if ((err as Error).name === "BlobTooLargeError")
        throw new ValidationError([{ field: "manifest_uri", description: `larger than ${deps.maxManifestBytes} bytes` }]);
      throw err;
    }
    const ids: string[] = [];
    for await (const lines of splitLines(stream.chunks, 4096)) {
      for (const line of lines) {
        const id = line.trim();
        if (id === "") continue;
        if (!USER_ID.test(id))
          throw new ValidationError([{ field: "manifest_uri", description: `line ${ids.length + 1}: 1-128 printable ASCII characters required` }]);
        ids.push(id);
        if (ids.length > maxUsers) throw new ValidationError([{ field: "manifest_uri", description: `more than ${maxUsers} users; split it` }]);
      }
    }
    return ids;
  }

  return {
    deleteUserData: unary("DeleteUserData", async (tenant, req) => {
      const v: FieldViolation[] = [];
      if (!REQUEST_ID.test(req.requestId)) v.push({ field: "request_id", description: "1-36 printable ASCII characters required" });
      if (req.userIds.length > 0 === (req.manifestUri !== ""))
        v.push({ field: "user_ids", description: "name users in user_ids or in manifest_uri (exactly one)" });
      if (req.userIds.length > maxInline) v.push({ field: "user_ids", description: `at most ${maxInline} per call; use manifest_uri for more` });
      const bad = req.userIds.findIndex((u) => !USER_ID.test(u));
      if (bad >= 0) v.push({ field: `user_ids[${bad}]`, description: "1-128 printable ASCII characters required" });
      if (v.length > 0) throw new ValidationError(v);
      if (req.callbackUrl) {
        const refused = await deps.callbackGuard(req.callbackUrl);
        if (refused) throw new ValidationError([{ field: "callback_url", description: refused }]);
      }
      const userIds = req.userIds.length > 0 ? [...new Set(req.userIds)] : [...new Set(await manifestUsers(tenant, req.manifestUri))];
      const afterErasure: AfterErasure = req.afterErasure === ProtoAfterErasure.AFTER_ERASURE_POPULATION ? "population" : "reject";
      const result = await deps.erasures.create(newId("erasure"), {
        tenant,
        requestId: req.requestId,
        userIds,
        afterErasure,
        callbackUrl: req.callbackUrl,
        now: new Date().toISOString(),
      });
      // Also on a repeat: the first call may have stored the erasure and failed before enqueueing.
      if (result.record.state === "running") await deps.jobs.add("eraseUsers", { tenant, erasureId: result.record.erasureId });
      if (result.created) deps.log.info({ tenant, erasureId: result.record.erasureId, users: userIds.length, afterErasure }, "user data erasure accepted");
      return { deletion: toProtoDeletion(result.record), deduplicated: !result.created };
    }),

    getUserDataDeletion: unary("GetUserDataDeletion", async (tenant, req) => {
      if (!isId("erasure", req.deletionId)) throw new ValidationError([{ field: "deletion_id", description: "not a deletion id" }]);
      const record = await deps.erasures.get(req.deletionId);
      // Another tenant's erasure is reported exactly like a missing one.
      if (!record || record.tenant !== tenant) throw new RpcError(status.NOT_FOUND, `deletion ${req.deletionId} not found`);
      return { deletion: toProtoDeletion(record) };
    }),

    getUsage: unary("GetUsage", async (tenant, req) => {
      const end = req.endDay || dayOf(new Date());
      const start = req.startDay || dayOf(new Date(Date.parse(`${end}T00:00:00Z`) - 29 * 86_400_000));
      let days: string[];
      try {
        days = daysBetween(start, end);
      } catch (err) {
        throw new ValidationError([{ field: "start_day", description: (err as Error).message }]);
      }
      return { days: await deps.usage.read(tenant, days) };
    }),
  };
}
