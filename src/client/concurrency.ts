/**
 * Locks and elections built the way etcd's clientv3/concurrency builds them,
 * so Cairn's client, etcdctl and Go programs interoperate on the same keys:
 *
 * - A session is a lease kept alive in the background; closing it revokes
 *   the lease, which deletes the session's keys.
 * - To lock `name`, a session creates `name/<lease id in hex>` (a Txn on
 *   create_revision == 0, so a retry finds its own key). Waiters queue by
 *   create revision: the holder is the key with the lowest one. A waiter
 *   watches only the key just ahead of it (the newest key created before its
 *   own, found with a sorted Range with max_create_revision) for its delete,
 *   so a release wakes one waiter, not all.
 * - An election is the same queue; the leader's key holds its proposal.
 *
 * The lock key's create revision is the FENCING TOKEN: it only grows from
 * one holder to the next. A lock alone cannot guarantee mutual exclusion —
 * a holder that pauses (GC, swap, a stopped VM) past its lease's TTL loses
 * the lock without knowing, and its delayed writes land after the next
 * holder's. A storage service that remembers the highest token it has seen
 * and refuses smaller ones closes that gap (see docs/locks.md).
 */
import { EventType, type KeyValue, type RangeResponse } from "../api/mod.js";
import { InvalidRequestError } from "./errors.js";
import { compare, op, toBytes, type Bytes, type KvClient } from "./kv.js";
import type { LeaseClient } from "./lease.js";
import type { WatchClient } from "./watch.js";
/** etcd's concurrency.NewSession default TTL. */
export const SESSION_TTL_SECONDS_DEFAULT = 60;

export interface SessionOptions {
  readonly ttlSeconds?: number;
  /** Use an existing lease instead of granting one (its keep-alive is then the caller's business). */
  readonly lease?: bigint;
}

/** A lease kept alive until close() (or until it is lost: `lost` then resolves with why). */
export class Session {
  private readonly stopper = new AbortController();
  private closing: Promise<void> | undefined;
  /** Resolves when the keep-alive loop ends on its own: the lease expired or could not be renewed for a TTL. */
  readonly lost: Promise<Error>;

  private constructor(private readonly leases: LeaseClient, readonly lease: bigint, readonly ttlSeconds: number, keepAlive: boolean) {
    this.lost = keepAlive
      ? leases.keepAlive(lease, ttlSeconds, { signal: this.stopper.signal }).then(() => new Promise<Error>(() => {}), (error: unknown) => error as Error)
      : new Promise<Error>(() => {});
  }

  static async create(leases: LeaseClient, options: SessionOptions = {}): Promise<Session> {
    const ttlSeconds = options.ttlSeconds ?? SESSION_TTL_SECONDS_DEFAULT;
    if (options.lease !== undefined) return new Session(leases, options.lease, ttlSeconds, false);
    const granted = await leases.grant(ttlSeconds);
    return new Session(leases, granted.ID, granted.TTL, true);
  }

  /** Stops the keep-alives and revokes the lease (deleting every key it holds). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopper.abort();
      try {
        await this.leases.revoke(this.lease);
      } catch {
        // Already gone, or unreachable: then it expires on its own within its TTL.
      }
    })();
    return this.closing;
  }
}

/** The key a session queues under: etcd's "<name>/<lease id in hex>" (the prefix already ends in "/"). */
function sessionKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  return concat(prefix, toBytes(BigInt.asUintN(64, lease).toString(16)));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The queue's prefix: the name and a "/", as etcd's NewMutex and NewElection make it. */
function queuePrefix(name: Bytes): Uint8Array {
  const bytes = toBytes(name);
  if (bytes.length === 0) throw new InvalidRequestError("a lock or election needs a non-empty name");
  return concat(bytes, toBytes("/"));
}

/** Waits until the key is deleted after `afterRevision` (the watch resumes on another member if one fails). */
async function waitDelete(watch: WatchClient, key: Uint8Array, afterRevision: number, signal: AbortSignal | undefined): Promise<void> {
  for await (const update of watch.watch(key, { startRevision: afterRevision + 1, noPut: true, signal })) {
    if (update.events.some((event) => event.type === EventType.delete)) return;
  }
  signal?.throwIfAborted();
}

/** etcd's waitDeletes: until no key in the prefix was created before `maxCreateRevision` + 1. */
async function waitPredecessors(kv: KvClient, watch: WatchClient, prefix: Uint8Array, maxCreateRevision: number, signal: AbortSignal | undefined): Promise<void> {
  for (;;) {
    const ahead = await kv.get(prefix, { prefix: true, maxCreateRevision, sortTarget: "create", sortOrder: "descend", limit: 1, signal });
    if (ahead.kvs.length === 0) return;
    await waitDelete(watch, ahead.kvs[0].key, ahead.header?.revision ?? 0, signal);
  }
}

/** Creates (or finds, after a retry) the session's key in the queue and returns it with its create revision. */
async function enqueue(kv: KvClient, prefix: Uint8Array, session: Session, value: Bytes, signal: AbortSignal | undefined): Promise<{ key: Uint8Array; createRevision: number; first: KeyValue | undefined }> {
  const key = sessionKey(prefix, session.lease);
  const owner = op.get(prefix, { prefix: true, sortTarget: "create", sortOrder: "ascend", limit: 1 });
  const response = await kv.transaction()
    .compare(compare.createRevision(key, "=", 0))
    .success(op.put(key, value, { lease: session.lease }), owner)
    .failure(op.get(key), owner)
    .commit({ signal });
  let createRevision = response.header?.revision ?? 0;
  if (!response.succeeded) {
    const mine = (response.responses[0] as { responseRange: RangeResponse }).responseRange.kvs[0];
    if (mine === undefined) throw new InvalidRequestError("the session's queue key vanished while enqueueing (its lease expired?)");
    createRevision = mine.createRevision;
  }
  const first = (response.responses[1] as { responseRange: RangeResponse }).responseRange.kvs[0];
  return { key, createRevision, first };
}

export interface LockOptions {
  /** Lease TTL of the lock's session (default 60 s): how long a crashed holder blocks the others. */
  readonly ttlSeconds?: number;
  /** Gives up waiting (the queue key is removed again). */
  readonly signal?: AbortSignal;
}

/** A held lock. */
export interface Lock {
  /** The lock key (`<name>/<lease id>`). */
  readonly key: Uint8Array;
  /**
   * The fencing token: the lock key's create revision. Strictly larger for
   * every later holder of the same lock; send it with every write the lock
   * protects and have the other side refuse tokens smaller than the largest
   * it has seen.
   */
  readonly fencingToken: number;
  readonly lease: bigint;
  /** Resolves with the reason if the session's lease is lost while the lock is held: stop acting as its holder. */
  readonly lost: Promise<Error>;
  /** Releases the lock (deletes the key and revokes the session's lease). Idempotent. */
  unlock(): Promise<void>;
}

/** Acquires the lock `name` (waiting behind earlier holders), as `etcdctl lock name` does. */
export async function acquireLock(kv: KvClient, leases: LeaseClient, watch: WatchClient, name: Bytes, options: LockOptions = {}): Promise<Lock> {
  const prefix = queuePrefix(name);
  const session = await Session.create(leases, { ttlSeconds: options.ttlSeconds });
  try {
    const { key, createRevision, first } = await enqueue(kv, prefix, session, new Uint8Array(0), options.signal);
    if (first === undefined || first.createRevision !== createRevision) {
      await waitPredecessors(kv, watch, prefix, createRevision - 1, options.signal);
    }
    // Still ours? (The session may have expired while waiting.)
    const check = await kv.get(key, { signal: options.signal });
    if (check.kvs.length === 0 || check.kvs[0].createRevision !== createRevision) throw new Error("lost the lock's session while waiting for it");
    let released: Promise<void> | undefined;
    return {
      key, fencingToken: createRevision, lease: session.lease, lost: session.lost,
      unlock: () => {
        released ??= (async () => {
          try {
            await kv.delete(key);
          } finally {
            await session.close();
          }
        })();
        return released;
      },
    };
  } catch (error) {
    await session.close();
    throw error;
  }
}

export interface Leadership {
  readonly key: Uint8Array;
  /** The leader key's create revision: a fencing token for the leader's term. */
  readonly revision: number;
  readonly lease: bigint;
  readonly lost: Promise<Error>;
  /** Changes the value the leader announces, only while this candidate still leads. */
  proclaim(value: Bytes): Promise<void>;
  /** Gives up leadership (deletes the key, revokes the session's lease). Idempotent. */
  resign(): Promise<void>;
}

export interface ElectionLeader {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly revision: number;
}

/** etcd's concurrency.Election: campaign, proclaim, resign, leader, observe. */
export class Election {
  private readonly prefix: Uint8Array;

  constructor(private readonly kv: KvClient, private readonly leases: LeaseClient, private readonly watchClient: WatchClient, name: Bytes) {
    this.prefix = queuePrefix(name);
  }

  /** Waits until this candidate leads, then resolves (as `etcdctl elect name value` does). */
  async campaign(value: Bytes, options: LockOptions = {}): Promise<Leadership> {
    const session = await Session.create(this.leases, { ttlSeconds: options.ttlSeconds });
    try {
      const { key, createRevision } = await enqueue(this.kv, this.prefix, session, value, options.signal);
      await waitPredecessors(this.kv, this.watchClient, this.prefix, createRevision - 1, options.signal);
      let resigned: Promise<void> | undefined;
      return {
        key, revision: createRevision, lease: session.lease, lost: session.lost,
        proclaim: async (next) => {
          const response = await this.kv.transaction()
            .compare(compare.createRevision(key, "=", createRevision))
            .success(op.put(key, next, { lease: session.lease }))
            .commit();
          if (!response.succeeded) throw new Error("not the leader any more: the election key is gone");
        },
        resign: () => {
          resigned ??= (async () => {
            try {
              await this.kv.delete(key);
            } finally {
              await session.close();
            }
          })();
          return resigned;
        },
      };
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  /** The current leader, or null when nobody leads. */
  async leader(options: { signal?: AbortSignal } = {}): Promise<ElectionLeader | null> {
    const response = await this.kv.get(this.prefix, { prefix: true, sortTarget: "create", sortOrder: "ascend", limit: 1, signal: options.signal });
    const first = response.kvs[0];
    return first === undefined ? null : { key: first.key, value: first.value, revision: first.createRevision };
  }

  /**
   * Every change of leader (or of the leader's value), starting with the
   * current one, until `signal` aborts (as `etcdctl elect --listen`).
   */
  async *observe(options: { signal?: AbortSignal } = {}): AsyncGenerator<ElectionLeader> {
    const { signal } = options;
    let last: ElectionLeader | null = null;
    while (!signal?.aborted) {
      const response = await this.kv.get(this.prefix, { prefix: true, sortTarget: "create", sortOrder: "ascend", limit: 1, signal });
      const first = response.kvs[0];
      const current = first === undefined ? null : { key: first.key, value: first.value, revision: first.createRevision };
      if (current !== null && (last === null || last.revision !== current.revision || !sameBytes(last.value, current.value))) {
        last = current;
        yield current;
      }
      await this.waitChange(response.header?.revision ?? 0, signal);
    }
  }

  /** Until anything under the prefix changes after `revision` (or `signal` aborts). */
  private async waitChange(revision: number, signal: AbortSignal | undefined): Promise<void> {
    for await (const update of this.watchClient.watch(this.prefix, { prefix: true, startRevision: revision + 1, signal })) {
      if (update.events.length > 0) return;
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}
