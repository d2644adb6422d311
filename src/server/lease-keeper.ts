/**
 * The clock side of leases. The state machine (kv/) knows which leases exist
 * and applies grants, renewals, checkpoints and revokes; this keeper knows
 * when each lease runs out by this member's monotonic clock, and, on the
 * leader only, acts on it:
 *
 * - Every member notes a deadline (now + TTL) when it applies a grant or a
 *   keep-alive (keep-alives go through Raft, so every member sees them), and
 *   answers TimeToLive from it. A member that starts (or installs a
 *   snapshot) starts each lease from its last checkpointed remaining TTL, or
 *   its full TTL when none was checkpointed.
 * - A member that becomes leader gives every lease an extension of one
 *   election timeout beyond what it knew (etcd's Promote), so a lease is
 *   never expired because its keep-alives could not reach a leader during
 *   the election. The extension is computed from the member's own
 *   deadlines, never from an earlier extension, and a lease that ran out
 *   more than one TTL ago gets none: however often leadership changes, a
 *   lease without keep-alives is revoked within two TTLs and one election
 *   timeout.
 * - The leader proposes a revoke for a lease past its deadline (the revoke
 *   names the leader's applied index, so a keep-alive that was already
 *   committed wins), and every checkpoint interval proposes the remaining
 *   TTLs (etcd's lease checkpointing), so a member restarted later, or a
 *   whole cluster restarted, does not hand out full TTLs again.
 */
import { assert } from "../lib/assert.js";
import { LEASE_CHECKPOINTS_PER_ENTRY_MAX, type AppliedEntry, type KvCommand, type LeaseCheckpoint, type Mvcc } from "../kv/mod.js";

/** Expiry revokes proposed per tick at most (etcd rate-limits revokes too); the rest wait for the next tick. */
export const LEASE_REVOKES_PER_TICK_MAX = 100;
/** etcd's default lease checkpoint interval. */
export const LEASE_CHECKPOINT_INTERVAL_MS_DEFAULT = 5 * 60 * 1000;

export interface LeaseKeeperOptions {
  readonly mvcc: Mvcc;
  /** Monotonic milliseconds. */
  readonly nowMs: () => number;
  readonly isLeader: () => boolean;
  /** This member's applied index. */
  readonly appliedIndex: () => number;
  /** Proposes a lease command through Raft; resolves once applied (its outcome is observed through observe()). */
  readonly propose: (command: KvCommand) => Promise<unknown>;
  /** Extension a new leader gives every lease: one election timeout, as etcd. */
  readonly promoteExtensionMs: number;
  readonly checkpointIntervalMs?: number;
  /** A revoke that has not applied after this long is proposed again. */
  readonly revokeRetryMs?: number;
  readonly log?: (message: string) => void;
}

export class LeaseKeeper {
  /** When each lease runs out as this member saw its grants and keep-alives applied. */
  private readonly deadlines = new Map<bigint, number>();
  /** While this member leads: the deadlines it acts on (its own, extended once at promotion). */
  private leading: Map<bigint, number> | null = null;
  /** Leases whose expiry revoke is in flight, with when it was proposed. */
  private readonly revoking = new Map<bigint, number>();
  private generation: number;
  private lastCheckpointMs = 0;
  private readonly checkpointIntervalMs: number;
  private readonly revokeRetryMs: number;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? LEASE_CHECKPOINT_INTERVAL_MS_DEFAULT;
    this.revokeRetryMs = options.revokeRetryMs ?? 2 * options.promoteExtensionMs;
    assert(this.checkpointIntervalMs > 0 && options.promoteExtensionMs >= 0, "lease keeper intervals must be positive");
    this.generation = options.mvcc.generation();
    this.reconcile();
  }

  /** Milliseconds left on the lease as this member sees it, or null when it does not exist here. */
  remainingMs(id: bigint): number | null {
    const deadline = this.leading?.get(id) ?? this.deadlines.get(id);
    if (deadline === undefined) return null;
    return Math.max(0, deadline - this.options.nowMs());
  }

  /** Feed every applied batch (KvStateMachine.onApplied). */
  observe(entries: readonly AppliedEntry[]): void {
    const now = this.options.nowMs();
    for (const entry of entries) {
      const outcome = entry.outcome;
      if (outcome === null || !outcome.ok) continue;
      const response = outcome.response;
      if (response.type === "leaseGrant" || response.type === "leaseRenew") {
        const deadline = now + response.response.ttlSeconds * 1000;
        this.deadlines.set(response.response.id, deadline);
        this.leading?.set(response.response.id, deadline);
      } else if (response.type === "leaseRevoke" && response.response.revoked) {
        this.forget(response.response.id);
      } else if (response.type === "leaseRevoke") {
        // An expiry revoke lost to a keep-alive: the lease lives on and may be revoked again later.
        this.revoking.delete(response.response.id);
      }
    }
  }

  /** Call periodically (a few times per second): leadership changes, expiry and checkpoints. */
  tick(): void {
    const { mvcc } = this.options;
    if (mvcc.generation() !== this.generation) {
      // A snapshot replaced the state: leases came and went without applied entries.
      this.generation = mvcc.generation();
      this.reconcile();
    }
    const leader = this.options.isLeader();
    if (leader && this.leading === null) this.promote();
    else if (!leader && this.leading !== null) this.demote();
    if (this.leading === null) return;
    this.expire();
    if (this.options.nowMs() - this.lastCheckpointMs >= this.checkpointIntervalMs) this.checkpoint();
  }

  private forget(id: bigint): void {
    this.deadlines.delete(id);
    this.leading?.delete(id);
    this.revoking.delete(id);
  }

  /** Deadlines for leases this member has not seen granted or renewed: from the last checkpoint, or the full TTL. */
  private reconcile(): void {
    const now = this.options.nowMs();
    const existing = new Set(this.options.mvcc.leaseIds());
    for (const id of [...this.deadlines.keys()]) if (!existing.has(id)) this.forget(id);
    for (const id of existing) {
      if (this.deadlines.has(id)) continue;
      const record = this.options.mvcc.lease(id);
      if (record === null) continue;
      const remainingSeconds = record.remainingSeconds > 0 ? record.remainingSeconds : record.ttlSeconds;
      const deadline = now + remainingSeconds * 1000;
      this.deadlines.set(id, deadline);
      this.leading?.set(id, deadline + this.options.promoteExtensionMs);
    }
  }

  private promote(): void {
    const now = this.options.nowMs();
    this.reconcile();
    this.leading = new Map();
    for (const [id, deadline] of this.deadlines) {
      // A lease that ran out during the election (its keep-alives had no leader to go to) gets the grace from now, but
      // only if it ran out within one TTL: otherwise leaderships shorter than the extension would keep it alive forever.
      const ttlMs = (this.options.mvcc.lease(id)?.ttlSeconds ?? 0) * 1000;
      this.leading.set(id, Math.max(deadline, Math.min(now, deadline + ttlMs)) + this.options.promoteExtensionMs);
    }
    this.lastCheckpointMs = now;
    this.options.log?.(`leases: leading; ${this.leading.size} lease(s) extended by ${this.options.promoteExtensionMs} ms`);
  }

  private demote(): void {
    this.leading = null;
    this.revoking.clear();
  }

  private expire(): void {
    const leading = this.leading as Map<bigint, number>;
    const now = this.options.nowMs();
    let proposed = 0;
    for (const [id, deadline] of leading) {
      if (proposed >= LEASE_REVOKES_PER_TICK_MAX) break;
      if (deadline > now) continue;
      const since = this.revoking.get(id);
      if (since !== undefined && now - since < this.revokeRetryMs) continue;
      if (!this.options.mvcc.lease(id)) {
        this.forget(id);
        continue;
      }
      this.revoking.set(id, now);
      proposed++;
      const expiryIndex = Math.max(1, this.options.appliedIndex());
      this.options.propose({ type: "leaseRevoke", request: { id, expiryIndex } }).catch((error: unknown) => {
        // Left in `revoking`: proposed again after revokeRetryMs if this member still leads.
        this.options.log?.(`leases: revoking expired lease ${id.toString(16)} failed: ${(error as Error).message}`);
      });
    }
  }

  private checkpoint(): void {
    const leading = this.leading as Map<bigint, number>;
    const now = this.options.nowMs();
    this.lastCheckpointMs = now;
    const asOfIndex = this.options.appliedIndex();
    let batch: LeaseCheckpoint[] = [];
    const send = () => {
      if (batch.length === 0) return;
      const checkpoints = batch;
      batch = [];
      this.options.propose({ type: "leaseCheckpoint", request: { asOfIndex, checkpoints } }).catch((error: unknown) => {
        this.options.log?.(`leases: checkpoint failed (the next interval tries again): ${(error as Error).message}`);
      });
    };
    for (const [id, deadline] of leading) {
      if (deadline <= now) continue;
      batch.push({ id, remainingSeconds: Math.ceil((deadline - now) / 1000) });
      if (batch.length >= LEASE_CHECKPOINTS_PER_ENTRY_MAX) send();
    }
    send();
  }
}
