/**
 * Leases in the replicated state: which leases exist, their granted TTL, the
 * remaining TTL last checkpointed by a leader, and which keys are attached.
 * Time itself is not here: when a lease runs out is the leader's clock's
 * business (server/), which proposes a revoke; the state machine only
 * applies grants, renewals, checkpoints and revokes in log order.
 *
 * Records live in the meta table, so every snapshot carries them with the
 * rest of the meta table (older readers install them as opaque meta
 * entries). The lease → keys index is derived state, kept in memory and
 * rebuilt from the key index when a store is opened or a snapshot installed
 * (as etcd rebuilds it), so a put pays no extra write for it.
 */
import { assert } from "../lib/assert.js";
import { compareBytes, utf8 } from "./encoding.js";
import { KvTable, type KvReader, type KvWriter } from "./store.js";

/** etcd's MaxLeaseTTL: a longer TTL is refused with "etcdserver: too large lease TTL". */
export const LEASE_TTL_SECONDS_MAX = 9_000_000_000;
const LEASE_RECORD_VERSION = 1;
/** Version, then id, TTL, remaining TTL and renewal index at 8 bytes each. */
const LEASE_RECORD_BYTES = 1 + 4 * 8;
const LEASE_KEY_PREFIX = "cairn/lease/";
const LEASE_KEY_START = utf8(LEASE_KEY_PREFIX);
const LEASE_KEY_END = utf8("cairn/lease0");

export interface LeaseRecord {
  readonly id: bigint;
  readonly ttlSeconds: number;
  /** Remaining TTL at the last checkpoint; 0 when none applies (the lease runs from its full TTL). */
  readonly remainingSeconds: number;
  /** Log index of the last grant or renewal: checkpoints measured before it do not apply. */
  readonly renewedIndex: number;
}

export interface LeaseInfo extends LeaseRecord {
  /** Attached keys, in byte order. */
  readonly keys: readonly Uint8Array[];
}

export function leaseMetaKey(id: bigint): Uint8Array {
  return utf8(LEASE_KEY_PREFIX + BigInt.asUintN(64, id).toString(16).padStart(16, "0"));
}

export function encodeLeaseRecord(record: LeaseRecord): Uint8Array {
  const out = new Uint8Array(LEASE_RECORD_BYTES);
  const view = new DataView(out.buffer);
  out[0] = LEASE_RECORD_VERSION;
  view.setBigInt64(1, record.id);
  view.setBigUint64(9, BigInt(record.ttlSeconds));
  view.setBigUint64(17, BigInt(record.remainingSeconds));
  view.setBigUint64(25, BigInt(record.renewedIndex));
  return out;
}

export function decodeLeaseRecord(bytes: Uint8Array): LeaseRecord {
  assert(bytes.length === LEASE_RECORD_BYTES && bytes[0] === LEASE_RECORD_VERSION, () => `lease record of ${bytes.length} bytes, version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    id: view.getBigInt64(1), ttlSeconds: Number(view.getBigUint64(9)),
    remainingSeconds: Number(view.getBigUint64(17)), renewedIndex: Number(view.getBigUint64(25)),
  };
}

/** Map keys for byte strings (one char per byte). */
function keyName(key: Uint8Array): string {
  let name = "";
  for (const byte of key) name += String.fromCharCode(byte);
  return name;
}

/**
 * The leases of one store, cached in memory. Changes are written through the
 * caller's write transaction; if that transaction fails the caller reloads
 * (the cache may then be ahead of the store).
 */
export class LeaseTable {
  private readonly records = new Map<bigint, LeaseRecord>();
  private readonly keys = new Map<bigint, Map<string, Uint8Array>>();

  /** Loads the records; `attached` lists every live key with a non-zero lease (read from the key index). */
  load(reader: KvReader, attached: () => Iterable<{ key: Uint8Array; lease: bigint }>): void {
    this.records.clear();
    this.keys.clear();
    for (const entry of reader.range(KvTable.Meta, { start: LEASE_KEY_START, end: LEASE_KEY_END })) {
      const record = decodeLeaseRecord(entry.value);
      this.records.set(record.id, record);
      this.keys.set(record.id, new Map());
    }
    if (this.records.size === 0) return;
    for (const { key, lease } of attached()) this.keys.get(lease)?.set(keyName(key), key);
  }

  get size(): number {
    return this.records.size;
  }

  has(id: bigint): boolean {
    return this.records.has(id);
  }

  get(id: bigint): LeaseRecord | undefined {
    return this.records.get(id);
  }

  info(id: bigint): LeaseInfo | null {
    const record = this.records.get(id);
    if (record === undefined) return null;
    return { ...record, keys: this.attachedKeys(id) };
  }

  ids(): bigint[] {
    return [...this.records.keys()];
  }

  attachedKeys(id: bigint): Uint8Array[] {
    return [...(this.keys.get(id)?.values() ?? [])].sort(compareBytes);
  }

  put(writer: KvWriter, record: LeaseRecord): void {
    assert(record.id !== 0n, "lease id 0 means no lease");
    writer.put(KvTable.Meta, leaseMetaKey(record.id), encodeLeaseRecord(record));
    this.records.set(record.id, record);
    if (!this.keys.has(record.id)) this.keys.set(record.id, new Map());
  }

  delete(writer: KvWriter, id: bigint): void {
    writer.delete(KvTable.Meta, leaseMetaKey(id));
    this.records.delete(id);
    this.keys.delete(id);
  }

  /** A key moved from lease `from` to lease `to` (either may be 0, no lease). */
  move(key: Uint8Array, from: bigint, to: bigint): void {
    if (from === to) return;
    if (from !== 0n) this.keys.get(from)?.delete(keyName(key));
    if (to !== 0n) this.keys.get(to)?.set(keyName(key), key);
  }
}
