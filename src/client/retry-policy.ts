/**
 * Which failed calls may be tried again on another endpoint. The rule that
 * matters: a write is sent again only when it certainly did not take effect.
 *
 * - Reads (Range, read-only Txn, MemberList, Status, HashKV) change nothing,
 *   so any transport failure and any "unavailable"-like answer may be retried
 *   elsewhere, within the budget and the deadline.
 * - Writes (Put, DeleteRange, Txn with writes, Compact, membership changes,
 *   MoveLeader) are retried only when the request never reached a server
 *   (the connection was never made, the stream was refused unprocessed) or a
 *   server refused it before proposing it (no leader, not leader, learner,
 *   too many requests). Everything else that leaves the outcome open — the
 *   connection lost after sending, the deadline, a cancel, the server's own
 *   "request timed out", "leader changed", "server stopped", an UNKNOWN or
 *   INTERNAL status, any UNAVAILABLE that is not one of the refusals — is an
 *   IndeterminateError. Re-sending those is how etcd's Java client lost
 *   updates under Jepsen.
 */
import { GrpcStatus, type EtcdErrorKind, type GrpcStatusCode } from "../api/mod.js";
import { CallAbortedError, EtcdClientError, IndeterminateError, TransportError } from "./errors.js";

export type CallKind = "read" | "write";

export type Verdict =
  /** Try another endpoint. `leaderSuspect`: the endpoint may no longer lead; `endpointSuspect`: prefer others for a while. */
  | { readonly action: "retry"; readonly leaderSuspect: boolean; readonly endpointSuspect: boolean }
  /** Stop and report `error` (the caller's abort reason for a cancelled read). */
  | { readonly action: "fail"; readonly error: unknown };

/** Refusals a server makes before a write is proposed: the write certainly did not take effect. */
const WRITE_NOT_APPLIED_KINDS: ReadonlySet<EtcdErrorKind> = new Set<EtcdErrorKind>([
  "noLeader", "notLeader", "notSupportedForLearner", "notCapable", "tooManyRequests",
]);

/** Server answers after which a read is worth trying elsewhere. */
const READ_RETRY_CODES: ReadonlySet<GrpcStatusCode> = new Set<GrpcStatusCode>([GrpcStatus.unavailable]);
const READ_RETRY_KINDS: ReadonlySet<EtcdErrorKind> = new Set<EtcdErrorKind>(["notLeader", "notSupportedForLearner", "tooManyRequests"]);

/** Statuses that leave a sent write's outcome open (unless its kind is a refusal above). */
const WRITE_OPEN_CODES: ReadonlySet<GrpcStatusCode> = new Set<GrpcStatusCode>([
  GrpcStatus.unavailable, GrpcStatus.deadlineExceeded, GrpcStatus.cancelled, GrpcStatus.unknown, GrpcStatus.internal,
]);

/** Kinds that say the endpoint's view of the leader is stale. */
const LEADER_SUSPECT_KINDS: ReadonlySet<EtcdErrorKind> = new Set<EtcdErrorKind>([
  "noLeader", "notLeader", "leaderChanged", "notSupportedForLearner", "stopped", "timeoutDueToLeaderFail",
]);

const retry = (leaderSuspect: boolean, endpointSuspect: boolean): Verdict => ({ action: "retry", leaderSuspect, endpointSuspect });
const fail = (error: unknown): Verdict => ({ action: "fail", error });

/** What to do after `error` failed one attempt of `method` (e.g. "KV/Put"). */
export function judgeFailure(error: unknown, kind: CallKind, method: string): Verdict {
  if (error instanceof TransportError) {
    if (!error.requestSent || kind === "read") return retry(true, true);
    return fail(new IndeterminateError(method, error.endpoint, "the connection failed after the request was sent", { cause: error }));
  }
  if (error instanceof CallAbortedError) {
    if (kind === "write" && error.requestSent) {
      const reason = error.deadline ? "the deadline passed before the answer came" : "the call was cancelled after the request was sent";
      return fail(new IndeterminateError(method, error.endpoint, reason, { cause: error }));
    }
    if (error.deadline) return fail(new EtcdClientError(GrpcStatus.deadlineExceeded, "context deadline exceeded", error.endpoint, method, { cause: error }));
    return fail(error.reason);
  }
  if (error instanceof EtcdClientError) return judgeStatus(error, kind, method);
  return fail(error);
}

function judgeStatus(error: EtcdClientError, kind: CallKind, method: string): Verdict {
  const leaderSuspect = error.kind !== undefined && LEADER_SUSPECT_KINDS.has(error.kind);
  if (kind === "read") {
    if (READ_RETRY_CODES.has(error.code) || (error.kind !== undefined && READ_RETRY_KINDS.has(error.kind))) return retry(leaderSuspect, true);
    return fail(error);
  }
  if (error.kind !== undefined && WRITE_NOT_APPLIED_KINDS.has(error.kind)) return retry(leaderSuspect, true);
  if (WRITE_OPEN_CODES.has(error.code)) {
    return fail(new IndeterminateError(method, error.endpoint ?? "unknown endpoint", `the server answered ${JSON.stringify(error.details)}`, { cause: error }));
  }
  return fail(error);
}
