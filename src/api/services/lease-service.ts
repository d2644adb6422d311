/**
 * etcd's Lease service on a LeaseBackend.
 *
 * Grant, Revoke and KeepAlive are commands of the KV state machine, proposed
 * through Raft like writes (from a follower they are forwarded to the
 * leader). Unlike etcd, a keep-alive is a replicated entry rather than a
 * message to the leader alone: every member then knows when each lease was
 * last renewed, so any member answers TimeToLive and a new leader starts
 * from what it saw instead of from full TTLs. The cost is one small log
 * entry per keep-alive (clients send one every TTL/3).
 *
 * etcd's answers for a lease that does not exist: Revoke fails with
 * NOT_FOUND "etcdserver: requested lease not found"; a keep-alive answers
 * TTL 0 and keeps the stream open; TimeToLive answers TTL -1.
 */
import { randomBytes } from "node:crypto";
import { assert } from "../../lib/assert.js";
import { LEASE_TTL_SECONDS_MAX, LeaseNotFoundError, type AppliedEntry, type KvCommand, type KvResponse } from "../../kv/mod.js";
import type { LeaseBackend } from "../backend.js";
import type { CallContext, ResponseSink } from "../grpc/server.js";
import { EtcdError } from "../etcd-errors.js";
import type { LeaseHandler } from "../handlers.js";
import { expectType, kvErrorToGrpc } from "../kv-mapping.js";
import type {
  LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
  LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
} from "../protobuf/messages.js";
import { headerOf, mapped, refuseOnLearner } from "./common.js";

/** A random positive 63-bit id, as etcd's generated lease ids are (never 0, which means "no lease"). */
export function generateLeaseId(): bigint {
  for (;;) {
    const id = randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n);
    if (id !== 0n) return id;
  }
}

export class LeaseService implements LeaseHandler {
  constructor(private readonly backend: LeaseBackend, private readonly newLeaseId: () => bigint = generateLeaseId) {
    assert(Number.isInteger(backend.leaseTtlSecondsMin) && backend.leaseTtlSecondsMin >= 1, "minimum lease TTL must be a positive whole number of seconds");
  }

  leaseGrant(request: LeaseGrantRequest, context: CallContext): Promise<LeaseGrantResponse> {
    return mapped(context.signal, async () => {
      if (request.TTL > LEASE_TTL_SECONDS_MAX) throw new EtcdError("leaseTtlTooLarge");
      const id = request.ID !== 0n ? request.ID : this.newLeaseId();
      const ttlSeconds = Math.max(request.TTL, this.backend.leaseTtlSecondsMin);
      const applied = await this.propose({ type: "leaseGrant", request: { id, ttlSeconds } }, context.signal);
      const granted = expectType(outcomeOf(applied), "leaseGrant").response;
      return { header: headerOf(this.backend, applied.revision), ID: granted.id, TTL: granted.ttlSeconds, error: "" };
    });
  }

  leaseRevoke(request: LeaseRevokeRequest, context: CallContext): Promise<LeaseRevokeResponse> {
    return mapped(context.signal, async () => {
      const applied = await this.propose({ type: "leaseRevoke", request: { id: request.ID, expiryIndex: 0 } }, context.signal);
      expectType(outcomeOf(applied), "leaseRevoke");
      return { header: headerOf(this.backend, applied.revision) };
    });
  }

  /** One keep-alive at a time per stream, answered in order; the stream ends when the client closes it. */
  leaseKeepAlive(requests: AsyncIterable<LeaseKeepAliveRequest>, responses: ResponseSink<LeaseKeepAliveResponse>, context: CallContext): Promise<void> {
    return mapped(context.signal, async () => {
      for await (const request of requests) {
        context.signal.throwIfAborted();
        const applied = await this.propose({ type: "leaseRenew", request: { id: request.ID } }, context.signal);
        let ttlSeconds = 0;
        if (applied.outcome?.ok === false && applied.outcome.error instanceof LeaseNotFoundError) ttlSeconds = 0;
        else ttlSeconds = expectType(outcomeOf(applied), "leaseRenew").response.ttlSeconds;
        await responses.send({ header: headerOf(this.backend, applied.revision), ID: request.ID, TTL: ttlSeconds });
      }
    });
  }

  leaseTimeToLive(request: LeaseTimeToLiveRequest, context: CallContext): Promise<LeaseTimeToLiveResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.readBarrier(context.signal);
      const header = headerOf(this.backend, this.backend.mvcc.currentRevision());
      const lease = this.backend.mvcc.lease(request.ID);
      const remainingMs = this.backend.leaseRemainingMs(request.ID);
      if (lease === null) return { header, ID: request.ID, TTL: -1, grantedTTL: 0, keys: [] };
      // etcd truncates the remaining duration to whole seconds.
      const ttl = remainingMs === null ? lease.ttlSeconds : Math.floor(remainingMs / 1000);
      return { header, ID: request.ID, TTL: ttl, grantedTTL: lease.ttlSeconds, keys: request.keys ? [...lease.keys] : [] };
    });
  }

  leaseLeases(_request: LeaseLeasesRequest, context: CallContext): Promise<LeaseLeasesResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.readBarrier(context.signal);
      const ids = this.backend.mvcc.leaseIds().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return { header: headerOf(this.backend, this.backend.mvcc.currentRevision()), leases: ids.map((ID) => ({ ID })) };
    });
  }

  private propose(command: KvCommand, signal: AbortSignal): Promise<AppliedEntry> {
    refuseOnLearner(this.backend);
    return this.backend.propose(command, signal);
  }
}

function outcomeOf(applied: AppliedEntry): KvResponse {
  assert(applied.outcome !== null, () => `the runtime answered a lease proposal with entry ${applied.index}, which is not a KV command`);
  if (!applied.outcome.ok) throw kvErrorToGrpc(applied.outcome.error);
  return applied.outcome.response;
}
