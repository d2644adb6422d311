/** What the MVCC state machine answers and emits, shaped like etcd's mvccpb and etcdserverpb messages. */
import type { KvError } from "./errors.js";

export interface KeyValue {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  /** 1 after creation, +1 per put; a delete resets the key's history (the next put starts at 1 again). */
  readonly version: number;
  readonly lease: bigint;
}

export interface KvEvent {
  readonly type: "put" | "delete";
  /** For a delete: the key and the deleting revision, everything else zero (as etcd). */
  readonly kv: KeyValue;
  /** The key as it was before this event, when it existed. */
  readonly prevKv: KeyValue | null;
}

export interface RangeResponse {
  /** The store's current revision (the response header's revision), not the revision read at. */
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

export interface PutResponse {
  readonly revision: number;
  readonly prevKv: KeyValue | null;
}

export interface DeleteRangeResponse {
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs: readonly KeyValue[];
}

export type ResponseOp =
  | { readonly type: "range"; readonly response: RangeResponse }
  | { readonly type: "put"; readonly response: PutResponse }
  | { readonly type: "deleteRange"; readonly response: DeleteRangeResponse }
  | { readonly type: "txn"; readonly response: TxnResponse };

export interface TxnResponse {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

export interface CompactResponse {
  readonly revision: number;
  readonly compactRevision: number;
  readonly physical: boolean;
}

export interface LeaseResponse {
  /** The store's revision after the command. */
  readonly revision: number;
  readonly id: bigint;
  /** The lease's granted TTL. */
  readonly ttlSeconds: number;
}

export interface LeaseRevokeResponse {
  readonly revision: number;
  readonly id: bigint;
  /** Keys deleted with the lease (all in `revision`). */
  readonly deleted: number;
  /** False when an expiry revoke found the lease renewed after the leader saw it expire: nothing was deleted. */
  readonly revoked: boolean;
}

export interface LeaseCheckpointResponse {
  readonly revision: number;
  /** Checkpoints recorded; the others named a lease that is gone or was renewed since. */
  readonly recorded: number;
}

export type KvResponse =
  | { readonly type: "put"; readonly response: PutResponse }
  | { readonly type: "deleteRange"; readonly response: DeleteRangeResponse }
  | { readonly type: "txn"; readonly response: TxnResponse }
  | { readonly type: "compact"; readonly response: CompactResponse }
  | { readonly type: "leaseGrant"; readonly response: LeaseResponse }
  | { readonly type: "leaseRenew"; readonly response: LeaseResponse }
  | { readonly type: "leaseRevoke"; readonly response: LeaseRevokeResponse }
  | { readonly type: "leaseCheckpoint"; readonly response: LeaseCheckpointResponse };

export type ApplyOutcome =
  | { readonly ok: true; readonly response: KvResponse }
  | { readonly ok: false; readonly error: KvError };

/** One applied Raft entry: its outcome (null for no-ops and membership entries) and the events it produced, all at `revision`. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly outcome: ApplyOutcome | null;
  /** The store's revision after this entry. */
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

export interface HashKvResult {
  readonly hash: number;
  readonly compactRevision: number;
  /** The revision the hash covers. */
  readonly hashRevision: number;
  /** The current revision (response header). */
  readonly revision: number;
}
