import { describe, expect, it } from "vitest";
import { MemoryKvStore } from "../storage/memory-kv/memory-kv-store.js";
import { encodeCommand, LEASE_CHECKPOINTS_PER_ENTRY_MAX, rangeRequest, type KvCommand } from "./command.js";
import { CommandDecodeError, LeaseExistsError, LeaseNotFoundError, LeaseTtlTooLargeError } from "./errors.js";
import { LEASE_TTL_SECONDS_MAX } from "./lease.js";
import { Mvcc } from "./mvcc.js";
import { SnapshotInstaller, SnapshotSource } from "./snapshot.js";
import { applyCommand, bytes, failure, grant, ok, put, text } from "./testing/mvcc-conformance.js";

const revoke = (mvcc: Mvcc, id: bigint, expiryIndex = 0) => applyCommand(mvcc, { type: "leaseRevoke", request: { id, expiryIndex } });
const renew = (mvcc: Mvcc, id: bigint) => applyCommand(mvcc, { type: "leaseRenew", request: { id } });
const checkpoint = (mvcc: Mvcc, asOfIndex: number, checkpoints: { id: bigint; remainingSeconds: number }[]) =>
  applyCommand(mvcc, { type: "leaseCheckpoint", request: { asOfIndex, checkpoints } });
const keys = (mvcc: Mvcc, id: bigint) => mvcc.lease(id)?.keys.map(text);
const get = (mvcc: Mvcc, key: string) => mvcc.range(rangeRequest(bytes(key))).kvs[0] ?? null;

describe("leases in the state machine", () => {
  it("grants a lease with the requested id and TTL without a new revision", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    const granted = ok(grant(mvcc, 0x1234_5678_9abc_def0n, 30));
    expect(granted).toEqual({ type: "leaseGrant", response: { revision: 1, id: 0x1234_5678_9abc_def0n, ttlSeconds: 30 } });
    expect(mvcc.currentRevision()).toBe(1);
    expect(mvcc.lease(0x1234_5678_9abc_def0n)).toMatchObject({ ttlSeconds: 30, remainingSeconds: 0, keys: [] });
    expect(mvcc.leaseIds()).toEqual([0x1234_5678_9abc_def0n]);
  });

  it("refuses a second grant of the same id, id 0 and a TTL above etcd's maximum, changing nothing", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 5n, 10);
    const again = failure(grant(mvcc, 5n, 99));
    expect(again).toBeInstanceOf(LeaseExistsError);
    expect(again.message).toBe("etcdserver: lease already exists");
    expect(mvcc.lease(5n)?.ttlSeconds).toBe(10);
    expect(failure(grant(mvcc, 0n, 10))).toBeInstanceOf(LeaseNotFoundError);
    const tooLong = failure(grant(mvcc, 6n, LEASE_TTL_SECONDS_MAX + 1));
    expect(tooLong).toBeInstanceOf(LeaseTtlTooLargeError);
    expect(tooLong.message).toBe("etcdserver: too large lease TTL");
    expect(ok(grant(mvcc, 7n, LEASE_TTL_SECONDS_MAX)).type).toBe("leaseGrant");
    expect(mvcc.leaseIds().sort()).toEqual([5n, 7n]);
  });

  it("attaches keys on put, moves them between leases and detaches them on delete or a put without lease", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 1n);
    grant(mvcc, 2n);
    put(mvcc, "b", "1", { lease: 1n });
    put(mvcc, "a", "1", { lease: 1n });
    put(mvcc, "c", "1", { lease: 1n });
    expect(keys(mvcc, 1n)).toEqual(["a", "b", "c"]);
    put(mvcc, "a", "2", { lease: 2n });
    put(mvcc, "b", "2");
    put(mvcc, "c", "2", { ignoreLease: true });
    expect(keys(mvcc, 1n)).toEqual(["c"]);
    expect(keys(mvcc, 2n)).toEqual(["a"]);
    applyCommand(mvcc, { type: "deleteRange", request: { key: bytes("a"), rangeEnd: bytes("z"), prevKv: false } });
    expect(keys(mvcc, 1n)).toEqual([]);
    expect(keys(mvcc, 2n)).toEqual([]);
  });

  it("revokes a lease by deleting all its keys in one revision, with a delete event for each", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 9n);
    put(mvcc, "lock/b", "x", { lease: 9n }); // 2
    put(mvcc, "lock/a", "y", { lease: 9n }); // 3
    put(mvcc, "other", "z"); // 4
    const revoked = revoke(mvcc, 9n);
    expect(ok(revoked)).toEqual({ type: "leaseRevoke", response: { revision: 5, id: 9n, deleted: 2, revoked: true } });
    expect(revoked.revision).toBe(5);
    expect(revoked.events.map((event) => [event.type, text(event.kv.key), event.kv.modRevision, text(event.prevKv?.value ?? new Uint8Array())]))
      .toEqual([["delete", "lock/a", 5, "y"], ["delete", "lock/b", 5, "x"]]);
    expect(get(mvcc, "lock/a")).toBeNull();
    expect(get(mvcc, "other")).not.toBeNull();
    expect(mvcc.lease(9n)).toBeNull();
    // The lease is gone: revoking again, renewing and attaching are refused.
    expect(failure(revoke(mvcc, 9n)).message).toBe("etcdserver: requested lease not found");
    expect(failure(renew(mvcc, 9n))).toBeInstanceOf(LeaseNotFoundError);
    expect(failure(put(mvcc, "k", "v", { lease: 9n }))).toBeInstanceOf(LeaseNotFoundError);
    expect(mvcc.currentRevision()).toBe(5);
  });

  it("keeps a lease whose expiry revoke was decided before its latest renewal", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 12n); // index 1
    put(mvcc, "held", "1", { lease: 12n }); // index 2
    renew(mvcc, 12n); // index 3
    // The leader saw the lease run out having applied up to index 2: the renewal at 3 came in time.
    const kept = revoke(mvcc, 12n, 2);
    expect(ok(kept)).toMatchObject({ response: { deleted: 0, revoked: false } });
    expect(kept.events).toEqual([]);
    expect(keys(mvcc, 12n)).toEqual(["held"]);
    // Seen expired after the renewal: revoked.
    expect(ok(revoke(mvcc, 12n, 4))).toMatchObject({ response: { deleted: 1, revoked: true } });
    expect(mvcc.lease(12n)).toBeNull();
  });

  it("revokes a lease without keys without a new revision", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 3n);
    const revoked = revoke(mvcc, 3n);
    expect(ok(revoked)).toMatchObject({ response: { revision: 1, deleted: 0 } });
    expect(revoked.events).toEqual([]);
  });

  it("records a checkpoint's remaining TTL, clears it on renewal, and ignores a checkpoint measured before the last renewal", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    grant(mvcc, 4n, 60); // index 1
    grant(mvcc, 5n, 60); // index 2
    expect(ok(checkpoint(mvcc, 2, [{ id: 4n, remainingSeconds: 42 }, { id: 5n, remainingSeconds: 80 }, { id: 77n, remainingSeconds: 3 }])))
      .toMatchObject({ response: { recorded: 2 } });
    expect(mvcc.lease(4n)?.remainingSeconds).toBe(42);
    // Never more than the TTL, whatever the leader measured.
    expect(mvcc.lease(5n)?.remainingSeconds).toBe(60);
    expect(ok(renew(mvcc, 4n))).toEqual({ type: "leaseRenew", response: { revision: 1, id: 4n, ttlSeconds: 60 } }); // index 4
    expect(mvcc.lease(4n)?.remainingSeconds).toBe(0);
    // Measured at index 3, before the renewal at 4: stale for lease 4, still good for lease 5.
    expect(ok(checkpoint(mvcc, 3, [{ id: 4n, remainingSeconds: 10 }, { id: 5n, remainingSeconds: 20 }]))).toMatchObject({ response: { recorded: 1 } });
    expect(mvcc.lease(4n)?.remainingSeconds).toBe(0);
    expect(mvcc.lease(5n)?.remainingSeconds).toBe(20);
  });

  it("refuses a checkpoint entry with more checkpoints than one entry may carry", () => {
    const mvcc = new Mvcc(new MemoryKvStore());
    const checkpoints = Array.from({ length: LEASE_CHECKPOINTS_PER_ENTRY_MAX + 1 }, (_, position) => ({ id: BigInt(position + 1), remainingSeconds: 1 }));
    const command: KvCommand = { type: "leaseCheckpoint", request: { asOfIndex: 0, checkpoints } };
    const [applied] = mvcc.applyEntries([{ term: 1, index: 1, type: 0, data: encodeCommand(command) }]);
    expect(failure(applied)).toBeInstanceOf(CommandDecodeError);
  });

  it("keeps leases, checkpoints and attached keys across a reopen of the store", () => {
    const store = new MemoryKvStore();
    const first = new Mvcc(store);
    grant(first, 8n, 20);
    grant(first, -8n, 30);
    put(first, "x", "1", { lease: 8n });
    put(first, "y", "1", { lease: -8n });
    put(first, "y", "2", { lease: -8n });
    checkpoint(first, 100, [{ id: 8n, remainingSeconds: 7 }]);
    const reopened = new Mvcc(store);
    expect(reopened.lease(8n)).toMatchObject({ ttlSeconds: 20, remainingSeconds: 7 });
    expect(keys(reopened, 8n)).toEqual(["x"]);
    expect(keys(reopened, -8n)).toEqual(["y"]);
    expect(ok(revoke(reopened, -8n))).toMatchObject({ response: { deleted: 1 } });
  });

  it("carries leases and their keys through a snapshot into another store", async () => {
    const source = new Mvcc(new MemoryKvStore());
    grant(source, 11n, 15);
    put(source, "s", "1", { lease: 11n });
    checkpoint(source, 100, [{ id: 11n, remainingSeconds: 9 }]);
    const snapshot = new SnapshotSource(source);
    const chunks: Uint8Array[] = [];
    for (let chunk = snapshot.nextChunk(); chunk !== null; chunk = snapshot.nextChunk()) chunks.push(chunk);
    const target = new MemoryKvStore();
    const installer = new SnapshotInstaller(target);
    for (const chunk of chunks) installer.push(chunk);
    installer.finish();
    const restored = new Mvcc(target);
    expect(restored.lease(11n)).toMatchObject({ ttlSeconds: 15, remainingSeconds: 9 });
    expect(keys(restored, 11n)).toEqual(["s"]);
    const revoked = revoke(restored, 11n);
    expect(revoked.events.map((event) => text(event.kv.key))).toEqual(["s"]);
  });
});
