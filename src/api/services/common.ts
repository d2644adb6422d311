/** Pieces every etcd service shares: the response header, the learner rule, and running a call with errors mapped. */
import type { NodeIdentity } from "../backend.js";
import { EtcdError } from "../etcd-errors.js";
import { toApiError } from "../kv-mapping.js";
import type { ResponseHeader } from "../protobuf/messages.js";

/** etcd's header: cluster and member id, the revision the answer reflects, the current term. */
export function headerOf(identity: NodeIdentity, revision: number): ResponseHeader {
  return { clusterId: identity.clusterId, memberId: identity.memberId, revision, raftTerm: identity.raftTerm() };
}

/** etcd refuses every unary RPC on a learner except Status and serializable Range. */
export function refuseOnLearner(identity: NodeIdentity): void {
  if (identity.isLearner()) throw new EtcdError("notSupportedForLearner");
}

/** Runs a call, turning whatever it throws into the error the client should see (kv-mapping.ts toApiError). */
export async function mapped<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toApiError(error, signal);
  }
}
