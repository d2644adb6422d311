import { describe, expect, it } from "vitest";
import { encodeCommand, Mvcc, type KvCommand } from "../kv/mod.js";
import { MemoryKvStore } from "../storage/memory-kv/memory-kv-store.js";
import { LeaseKeeper } from "./lease-keeper.js";

const EXTENSION_MS = 1000;

/** A single member: commands apply at once, the clock moves only when told. */
class Harness {
  now = 0;
  leader = false;
  readonly mvcc: Mvcc;
  readonly proposed: KvCommand[] = [];
  keeper: LeaseKeeper;

  constructor(store = new MemoryKvStore(), checkpointIntervalMs = 60_000) {
    this.mvcc = new Mvcc(store);
    this.keeper = this.newKeeper(checkpointIntervalMs);
  }

  newKeeper(checkpointIntervalMs = 60_000): LeaseKeeper {
    this.keeper = new LeaseKeeper({
      mvcc: this.mvcc, nowMs: () => this.now, isLeader: () => this.leader, appliedIndex: () => this.mvcc.appliedIndex(),
      propose: async (command) => {
        this.proposed.push(command);
        this.apply(command);
      },
      promoteExtensionMs: EXTENSION_MS, checkpointIntervalMs,
    });
    return this.keeper;
  }

  apply(command: KvCommand): void {
    const applied = this.mvcc.applyEntries([{ term: 1, index: this.mvcc.appliedIndex() + 1, type: 0, data: encodeCommand(command) }]);
    this.keeper.observe(applied);
  }

  /** Moves the clock in steps of 100 ms, ticking the keeper at each. */
  advance(milliseconds: number): void {
    const until = this.now + milliseconds;
    while (this.now < until) {
      this.now = Math.min(until, this.now + 100);
      this.keeper.tick();
    }
  }

  revokes(): bigint[] {
    return this.proposed.flatMap((command) => (command.type === "leaseRevoke" ? [command.request.id] : []));
  }
}

describe("the lease keeper", () => {
  it("has the leader revoke a lease once its TTL has passed without a keep-alive, not before", () => {
    const harness = new Harness();
    harness.leader = true;
    harness.keeper.tick();
    harness.apply({ type: "leaseGrant", request: { id: 1n, ttlSeconds: 5 } });
    harness.advance(4900);
    expect(harness.revokes()).toEqual([]);
    expect(harness.keeper.remainingMs(1n)).toBe(100);
    harness.advance(200);
    expect(harness.revokes()).toEqual([1n]);
    expect(harness.mvcc.lease(1n)).toBeNull();
    expect(harness.keeper.remainingMs(1n)).toBeNull();
  });

  it("restarts the TTL on each applied keep-alive", () => {
    const harness = new Harness();
    harness.leader = true;
    harness.apply({ type: "leaseGrant", request: { id: 2n, ttlSeconds: 3 } });
    for (let round = 0; round < 5; round++) {
      harness.advance(2000);
      harness.apply({ type: "leaseRenew", request: { id: 2n } });
    }
    expect(harness.revokes()).toEqual([]);
    harness.advance(3100);
    expect(harness.revokes()).toEqual([2n]);
  });

  it("never revokes anything on a follower, which still knows the remaining TTL", () => {
    const harness = new Harness();
    harness.apply({ type: "leaseGrant", request: { id: 3n, ttlSeconds: 2 } });
    harness.advance(500);
    expect(harness.keeper.remainingMs(3n)).toBe(1500);
    harness.advance(10_000);
    expect(harness.proposed).toEqual([]);
    expect(harness.mvcc.lease(3n)).not.toBeNull();
  });

  it("gives every lease one election timeout more when this member becomes leader, instead of expiring it at once", () => {
    const harness = new Harness();
    harness.apply({ type: "leaseGrant", request: { id: 4n, ttlSeconds: 2 } });
    harness.advance(3000); // a follower: the lease ran out a second ago, the old leader never revoked it
    harness.leader = true;
    harness.advance(EXTENSION_MS - 100);
    expect(harness.revokes()).toEqual([]);
    harness.advance(200);
    expect(harness.revokes()).toEqual([4n]);
  });

  it("does not let repeated elections keep a lease alive: it is revoked within two TTLs and one extension", () => {
    const harness = new Harness();
    harness.apply({ type: "leaseGrant", request: { id: 5n, ttlSeconds: 4 } });
    // Leadership flaps every 300 ms, faster than the extension.
    let elapsed = 0;
    while (harness.mvcc.lease(5n) !== null && elapsed < 20_000) {
      harness.leader = !harness.leader;
      harness.advance(300);
      elapsed += 300;
    }
    expect(harness.revokes()).toEqual([5n]);
    expect(elapsed).toBeLessThanOrEqual(2 * 4000 + EXTENSION_MS + 600);
  });

  it("checkpoints remaining TTLs so a restarted member continues from them rather than from the full TTL", () => {
    const store = new MemoryKvStore();
    const harness = new Harness(store, 1000);
    harness.leader = true;
    harness.keeper.tick();
    harness.apply({ type: "leaseGrant", request: { id: 6n, ttlSeconds: 10 } });
    harness.advance(6000);
    const checkpoints = harness.proposed.filter((command) => command.type === "leaseCheckpoint");
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(harness.mvcc.lease(6n)?.remainingSeconds).toBe(4);
    // A fresh keeper (a restart) over the same state: four seconds left, not ten.
    harness.leader = false;
    const restarted = harness.newKeeper();
    expect(restarted.remainingMs(6n)).toBe(4000);
    harness.leader = true;
    harness.advance(4000 + EXTENSION_MS + 100);
    expect(harness.revokes()).toEqual([6n]);
  });

  it("lets a keep-alive committed before the expiry revoke win over it", () => {
    const harness = new Harness();
    harness.apply({ type: "leaseGrant", request: { id: 7n, ttlSeconds: 1 } });
    const expiryIndex = harness.mvcc.appliedIndex();
    harness.apply({ type: "leaseRenew", request: { id: 7n } });
    harness.apply({ type: "leaseRevoke", request: { id: 7n, expiryIndex } });
    expect(harness.mvcc.lease(7n)).not.toBeNull();
    expect(harness.keeper.remainingMs(7n)).toBe(1000);
  });

  it("learns the leases a snapshot install brought (and forgets the ones it dropped) at the next tick", () => {
    const store = new MemoryKvStore();
    const harness = new Harness(store);
    harness.apply({ type: "leaseGrant", request: { id: 8n, ttlSeconds: 30 } });
    // Another view of the same store changes it underneath, as an installed snapshot does: lease 8 goes, lease 9 comes.
    const installed = new Mvcc(store);
    installed.applyEntries([
      { term: 2, index: installed.appliedIndex() + 1, type: 0, data: encodeCommand({ type: "leaseRevoke", request: { id: 8n, expiryIndex: 0 } }) },
      { term: 2, index: installed.appliedIndex() + 2, type: 0, data: encodeCommand({ type: "leaseGrant", request: { id: 9n, ttlSeconds: 4 } }) },
    ]);
    harness.mvcc.reload();
    harness.keeper.tick();
    expect(harness.keeper.remainingMs(8n)).toBeNull();
    expect(harness.keeper.remainingMs(9n)).toBe(4000);
    harness.leader = true;
    harness.advance(4000 + EXTENSION_MS + 200);
    expect(harness.revokes()).toEqual([9n]);
  });
});
