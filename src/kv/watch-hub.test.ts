import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryKvStore } from "../storage/memory-kv/memory-kv-store.js";
import { deleteRangeRequest, putRequest, type RequestOp } from "./command.js";
import { Mvcc } from "./mvcc.js";
import { applyCommand, bytes, put, text } from "./testing/mvcc-conformance.js";
import type { AppliedEntry, KvEvent } from "./types.js";
import { EmptyWatcherRangeError, WatchHub, type WatchDelivery, type WatchSpec, type Watcher } from "./watch-hub.js";

/** An MVCC whose applied entries reach the hub, as KvStateMachine.onApplied wires them. */
function setup(bufferedEventsMax = 100, deliveryEventsMax = 1000, byteLimits: { bufferedBytesMax?: number; deliveryBytesMax?: number } = {}) {
  const mvcc = new Mvcc(new MemoryKvStore());
  const hub = new WatchHub(mvcc, { bufferedEventsMax, deliveryEventsMax, historyRecordsMax: 50, ...byteLimits });
  const feed = (applied: AppliedEntry): AppliedEntry => {
    hub.applied([applied]);
    return applied;
  };
  return {
    mvcc, hub,
    put: (key: string, value: string) => feed(put(mvcc, key, value)),
    del: (key: string, rangeEnd = "") => feed(applyCommand(mvcc, { type: "deleteRange", request: deleteRangeRequest(bytes(key), { rangeEnd: bytes(rangeEnd) }) })),
    txn: (ops: RequestOp[]) => feed(applyCommand(mvcc, { type: "txn", request: { compare: [], success: ops, failure: [] } })),
    compact: (revision: number) => feed(applyCommand(mvcc, { type: "compact", request: { revision, physical: false } })),
  };
}

function spec(key: string, fields: Partial<WatchSpec> & { prefix?: boolean } = {}): WatchSpec {
  const rangeEnd = fields.prefix ? bytes(key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1)) : fields.rangeEnd ?? new Uint8Array(0);
  return { key: bytes(key), rangeEnd, startRevision: 0, noPut: false, noDelete: false, prevKv: false, ...fields };
}

const brief = (event: KvEvent) => `${event.type} ${text(event.kv.key)}=${text(event.kv.value)}@${event.kv.modRevision}` +
  (event.prevKv === null ? "" : ` (was ${text(event.prevKv.value)}@${event.prevKv.modRevision})`);

/** Takes everything the watcher has now, as a consumer would (taking again after a null while still pending). */
function drainAll(hub: WatchHub, watcher: Watcher): WatchDelivery[] {
  const out: WatchDelivery[] = [];
  for (let guard = 0; watcher.pending() && guard < 100_000; guard++) {
    const delivery = hub.take(watcher);
    if (delivery !== null) out.push(delivery);
  }
  expect(watcher.pending()).toBe(false);
  return out;
}

const eventsOf = (deliveries: readonly WatchDelivery[]): KvEvent[] =>
  deliveries.flatMap((delivery) => (delivery.kind === "events" ? delivery.events : []));

describe("WatchHub", () => {
  it("delivers new events for a key, a prefix and a range, in revision order", () => {
    const t = setup();
    const one = t.hub.watch(spec("a"), () => {});
    const prefix = t.hub.watch(spec("a/", { prefix: true }), () => {});
    const range = t.hub.watch(spec("b", { rangeEnd: bytes("d") }), () => {});
    const all = t.hub.watch(spec("\0", { rangeEnd: bytes("\0") }), () => {});
    t.put("a", "1");
    t.put("a/x", "2");
    t.put("c", "3");
    t.put("d", "4");
    t.del("a");
    expect(eventsOf(drainAll(t.hub, one)).map(brief)).toEqual(["put a=1@2", "delete a=@6"]);
    expect(eventsOf(drainAll(t.hub, prefix)).map(brief)).toEqual(["put a/x=2@3"]);
    expect(eventsOf(drainAll(t.hub, range)).map(brief)).toEqual(["put c=3@4"]);
    expect(eventsOf(drainAll(t.hub, all)).map(brief)).toEqual(["put a=1@2", "put a/x=2@3", "put c=3@4", "put d=4@5", "delete a=@6"]);
  });

  it("delivers the events of one txn together, in one delivery at its revision", () => {
    const t = setup();
    const watcher = t.hub.watch(spec("k/", { prefix: true, prevKv: true }), () => {});
    t.put("k/1", "old");
    t.txn([
      { type: "put", request: putRequest(bytes("k/1"), bytes("new")) },
      { type: "put", request: putRequest(bytes("k/2"), bytes("two")) },
      { type: "deleteRange", request: deleteRangeRequest(bytes("k/3")) },
    ]);
    const first = t.hub.take(watcher);
    const second = t.hub.take(watcher);
    expect(first).toMatchObject({ kind: "events", revision: 3 });
    // One drain takes whole revisions while they fit; with room for everything, both revisions come at once.
    expect(second).toBeNull();
    expect(first?.kind === "events" && first.events.map(brief)).toEqual(["put k/1=old@2", "put k/1=new@3 (was old@2)", "put k/2=two@3"]);
  });

  it("never splits a txn across deliveries even when a delivery is smaller than the txn", () => {
    const t = setup(100, 2);
    const watcher = t.hub.watch(spec("k/", { prefix: true }), () => {});
    t.put("k/0", "x");
    t.txn(["a", "b", "c"].map((name): RequestOp => ({ type: "put", request: putRequest(bytes(`k/${name}`), bytes(name)) })));
    t.put("k/9", "y");
    const deliveries = drainAll(t.hub, watcher).map((delivery) => delivery.kind === "events" ? delivery.events.map((event) => event.kv.modRevision) : []);
    expect(deliveries).toEqual([[2], [3, 3, 3], [4]]);
  });

  it("replays history from a past start revision, then continues live without a gap or a duplicate", () => {
    const t = setup();
    for (let i = 0; i < 120; i++) t.put(`h/${i % 7}`, `v${i}`);
    t.put("other", "x");
    const watcher = t.hub.watch(spec("h/", { prefix: true, startRevision: 10 }), () => {});
    expect(watcher.synced).toBe(false);
    // A live write while it catches up: it must come once, after the history.
    t.put("h/live", "now");
    const events = eventsOf(drainAll(t.hub, watcher));
    expect(watcher.synced).toBe(true);
    t.put("h/after", "later");
    events.push(...eventsOf(drainAll(t.hub, watcher)));
    const revisions = events.map((event) => event.kv.modRevision);
    expect(revisions[0]).toBe(10);
    expect(revisions).toEqual([...Array.from({ length: 112 }, (_, i) => 10 + i), 123, 124]);
    expect(events.at(-2)?.kv.value).toEqual(bytes("now"));
  });

  it("answers prev_kv from history as from the live path, and leaves it out of creations", () => {
    const t = setup();
    t.put("p", "1");
    t.put("p", "2");
    t.del("p");
    t.put("p", "3");
    const historic = t.hub.watch(spec("p", { prevKv: true, startRevision: 1 }), () => {});
    expect(eventsOf(drainAll(t.hub, historic)).map(brief)).toEqual(["put p=1@2", "put p=2@3 (was 1@2)", "delete p=@4 (was 2@3)", "put p=3@5"]);
    const withoutPrev = t.hub.watch(spec("p", { startRevision: 4 }), () => {});
    expect(eventsOf(drainAll(t.hub, withoutPrev)).map(brief)).toEqual(["delete p=@4", "put p=3@5"]);
  });

  it("filters out puts (NOPUT) or deletes (NODELETE), live and from history", () => {
    const t = setup();
    t.put("f", "1");
    t.del("f");
    const noPutHistoric = t.hub.watch(spec("f", { noPut: true, startRevision: 2 }), () => {});
    const noDelete = t.hub.watch(spec("f", { noDelete: true }), () => {});
    t.put("f", "2");
    t.del("f");
    expect(eventsOf(drainAll(t.hub, noPutHistoric)).map(brief)).toEqual(["delete f=@3", "delete f=@5"]);
    expect(eventsOf(drainAll(t.hub, noDelete)).map(brief)).toEqual(["put f=2@4"]);
  });

  it("waits for a future start revision without delivering older events", () => {
    const t = setup();
    const watcher = t.hub.watch(spec("w", { startRevision: 4 }), () => {});
    t.put("w", "2");
    t.put("w", "3");
    t.put("w", "4");
    expect(eventsOf(drainAll(t.hub, watcher)).map(brief)).toEqual(["put w=4@4"]);
  });

  it("cancels a watcher that needs compacted history, reporting the compact revision", () => {
    const t = setup();
    for (let i = 0; i < 5; i++) t.put("c", `${i}`);
    t.compact(4);
    const below = t.hub.watch(spec("c", { startRevision: 2 }), () => {});
    expect(drainAll(t.hub, below)).toEqual([{ kind: "compacted", compactRevision: 4 }]);
    expect(below.canceled).toBe(true);
    expect(t.hub.watcherCount()).toBe(0);
    const atCompact = t.hub.watch(spec("c", { startRevision: 4 }), () => {});
    expect(eventsOf(drainAll(t.hub, atCompact)).map(brief)).toEqual(["put c=2@4", "put c=3@5", "put c=4@6"]);
  });

  it("cancels a watcher that fell behind past a compaction once its buffer is drained", () => {
    const t = setup(3);
    const watcher = t.hub.watch(spec("s"), () => {});
    for (let i = 0; i < 10; i++) t.put("s", `${i}`);
    t.compact(8);
    const deliveries = drainAll(t.hub, watcher);
    expect(eventsOf(deliveries).map((event) => event.kv.modRevision)).toEqual([2, 3, 4]);
    expect(deliveries.at(-1)).toEqual({ kind: "compacted", compactRevision: 8 });
  });

  it("refuses an empty range with etcd's message", () => {
    const t = setup();
    expect(() => t.hub.watch(spec("b", { rangeEnd: bytes("a") }), () => {})).toThrow(new EmptyWatcherRangeError());
    expect(() => t.hub.watch(spec("b", { rangeEnd: bytes("b") }), () => {})).toThrow("mvcc: watcher range is empty");
    expect(t.hub.watcherCount()).toBe(0);
  });

  it("stops delivering after cancel and forgets the watcher's buffer", () => {
    const t = setup();
    const watcher = t.hub.watch(spec("x"), () => {});
    t.put("x", "1");
    expect(t.hub.bufferedEvents()).toBe(1);
    t.hub.cancel(watcher);
    t.put("x", "2");
    expect(t.hub.take(watcher)).toBeNull();
    expect(t.hub.bufferedEvents()).toBe(0);
    expect(watcher.pending()).toBe(false);
  });

  it("keeps a watcher that is never read within its bound while another watcher gets every event, then the slow one catches up from storage with no gap", () => {
    const bound = 50;
    const t = setup(bound, 200);
    let slowWoken = 0;
    const slow = t.hub.watch(spec("load/", { prefix: true }), () => slowWoken++);
    const fast = t.hub.watch(spec("load/", { prefix: true }), () => {});
    const fastSeen: number[] = [];
    let peakSlow = 0;
    for (let i = 0; i < 2000; i++) {
      t.put(`load/${i % 13}`, `${i}`);
      peakSlow = Math.max(peakSlow, slow.bufferedEvents);
      if (i % 7 === 0) fastSeen.push(...eventsOf(drainAll(t.hub, fast)).map((event) => event.kv.modRevision));
    }
    fastSeen.push(...eventsOf(drainAll(t.hub, fast)).map((event) => event.kv.modRevision));
    expect(fastSeen).toEqual(Array.from({ length: 2000 }, (_, i) => i + 2));
    expect(peakSlow).toBe(bound);
    expect(t.hub.bufferedEventsPeak()).toBe(bound);
    expect(t.hub.overflowCount()).toBe(1);
    expect(slow.synced).toBe(false);
    expect(slowWoken).toBeGreaterThan(0);
    // Only the slow watcher's bounded buffer is held in memory.
    expect(t.hub.bufferedEvents()).toBe(bound);
    const slowSeen = eventsOf(drainAll(t.hub, slow)).map((event) => event.kv.modRevision);
    expect(slowSeen).toEqual(Array.from({ length: 2000 }, (_, i) => i + 2));
    expect(slow.synced).toBe(true);
    t.put("load/0", "after");
    expect(eventsOf(drainAll(t.hub, slow)).map((event) => event.kv.modRevision)).toEqual([2002]);
  });

  it("bounds a watcher's memory by bytes as well as events, and hands out deliveries of bounded size", () => {
    const t = setup(1000, 1000, { bufferedBytesMax: 10_000, deliveryBytesMax: 4000 });
    const watcher = t.hub.watch(spec("big/", { prefix: true }), () => {});
    const value = "x".repeat(1000);
    let peakBytes = 0;
    for (let i = 0; i < 100; i++) {
      t.put(`big/${i % 10}`, value);
      peakBytes = Math.max(peakBytes, t.hub.bufferedEvents() * (value.length + 5));
    }
    // 9 puts of 1005 bytes fit in 10,000 bytes; the 10th does not.
    expect(t.hub.bufferedEventsPeak()).toBe(9);
    expect(peakBytes).toBeLessThanOrEqual(10_000);
    expect(watcher.synced).toBe(false);
    const deliveries = drainAll(t.hub, watcher);
    for (const delivery of deliveries) expect(delivery.kind === "events" && delivery.events.length).toBeLessThanOrEqual(4);
    expect(eventsOf(deliveries).map((event) => event.kv.modRevision)).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
  });

  it("moves a watcher to storage when one txn is larger than its whole buffer, and delivers that txn whole", () => {
    const t = setup(2);
    const watcher = t.hub.watch(spec("big/", { prefix: true }), () => {});
    t.txn(["a", "b", "c", "d"].map((name): RequestOp => ({ type: "put", request: putRequest(bytes(`big/${name}`), bytes(name)) })));
    expect(watcher.bufferedEvents).toBe(0);
    expect(watcher.synced).toBe(false);
    expect(drainAll(t.hub, watcher).map((delivery) => delivery.kind === "events" ? delivery.events.length : -1)).toEqual([4]);
  });

  it("re-reads from storage after a snapshot install moved the store ahead", () => {
    const t = setup();
    const watcher = t.hub.watch(spec("r"), () => {});
    t.put("r", "1");
    // Writes the hub never saw (they came inside a snapshot), then the restore notice.
    put(t.mvcc, "r", "2");
    put(t.mvcc, "r", "3");
    t.hub.restored();
    expect(watcher.synced).toBe(false);
    expect(eventsOf(drainAll(t.hub, watcher)).map(brief)).toEqual(["put r=1@2", "put r=2@3", "put r=3@4"]);
    t.put("r", "4");
    expect(eventsOf(drainAll(t.hub, watcher)).map(brief)).toEqual(["put r=4@5"]);
  });

  it("offers progress only to a watcher that has nothing left to deliver", () => {
    const t = setup();
    const watcher = t.hub.watch(spec("g"), () => {});
    t.put("g", "1");
    expect(t.hub.progressRevision(watcher)).toBeNull();
    drainAll(t.hub, watcher);
    t.put("other", "2");
    expect(t.hub.progressRevision(watcher)).toBe(3);
  });
});

describe("WatchHub against a naive model", () => {
  type Step =
    | { kind: "put"; key: number }
    | { kind: "delete"; key: number }
    | { kind: "txn"; keys: number[] }
    | { kind: "take"; watcher: number }
    | { kind: "compact" };

  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("put" as const), key: fc.integer({ min: 0, max: 5 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 5 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("txn" as const), keys: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("take" as const), watcher: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: "compact" as const }) },
  );

  it("gives every watcher exactly the matching events of the history, in order, whole revisions at a time, or a compacted end", () => {
    fc.assert(fc.property(
      fc.array(step, { maxLength: 120 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 20 }),
      (steps, bufferedEventsMax, deliveryEventsMax, startOffset) => {
        const t = setup(bufferedEventsMax, deliveryEventsMax);
        const history: { revision: number; type: string; key: string }[] = [];
        const record = (applied: AppliedEntry) => {
          for (const event of applied.events) history.push({ revision: applied.revision, type: event.type, key: text(event.kv.key) });
        };
        // Some history first, so past start revisions mean something.
        for (let i = 0; i < startOffset; i++) record(t.put(`k${i % 6}`, `${i}`));
        const specs: WatchSpec[] = [
          spec("k", { rangeEnd: bytes("l") }),
          spec("k2"),
          spec("k", { rangeEnd: bytes("l"), noPut: true, startRevision: 1 + Math.floor(startOffset / 2) }),
          spec("k3", { rangeEnd: bytes("\0"), noDelete: true, startRevision: 2 }),
        ];
        const watchers = specs.map((item) => t.hub.watch(item, () => {}));
        const got: KvEvent[][] = watchers.map(() => []);
        const compactedAt: (number | null)[] = watchers.map(() => null);
        const take = (index: number) => {
          const delivery = t.hub.take(watchers[index]);
          if (delivery === null) return;
          if (delivery.kind === "compacted") {
            compactedAt[index] = delivery.compactRevision;
            return;
          }
          // Whole revisions: a delivery never ends inside a revision the watcher has more events of.
          const last = delivery.events.at(-1)!.kv.modRevision;
          const owedAtLast = history.filter((entry) => entry.revision === last && matches(specs[index], entry)).length;
          expect(delivery.events.filter((event) => event.kv.modRevision === last).length).toBe(owedAtLast);
          got[index].push(...delivery.events);
        };
        for (const item of steps) {
          switch (item.kind) {
            case "put": record(t.put(`k${item.key}`, "v")); break;
            case "delete": record(t.del(`k${item.key}`)); break;
            case "txn": record(t.txn(item.keys.map((key): RequestOp => ({ type: "put", request: putRequest(bytes(`k${key}`), bytes("t")) })))); break;
            case "take": take(item.watcher); break;
            case "compact": {
              const revision = t.mvcc.currentRevision() - 2;
              if (revision > t.mvcc.compactRevision()) t.compact(revision);
              break;
            }
          }
          for (const watcher of watchers) expect(watcher.bufferedEvents).toBeLessThanOrEqual(bufferedEventsMax);
        }
        for (let index = 0; index < watchers.length; index++) {
          for (let guard = 0; watchers[index].pending() && guard < 10_000; guard++) take(index);
          const start = specs[index].startRevision === 0 ? startOffset + 2 : specs[index].startRevision;
          const owed = history.filter((entry) => entry.revision >= start && matches(specs[index], entry));
          const seen = got[index].map((event) => ({ revision: event.kv.modRevision, type: event.type, key: text(event.kv.key) }));
          if (compactedAt[index] === null) {
            expect(seen).toEqual(owed);
          } else {
            // A compacted end comes only for history the watcher still needed, after a gap-free prefix of what it was owed.
            expect(seen).toEqual(owed.slice(0, seen.length));
            const next = seen.length === 0 ? start : seen.at(-1)!.revision + 1;
            expect(next).toBeLessThan(compactedAt[index]!);
          }
        }
      },
    ), { numRuns: 300 });
  });

  function matches(item: WatchSpec, entry: { type: string; key: string }): boolean {
    if (entry.type === "put" ? item.noPut : item.noDelete) return false;
    const key = bytes(entry.key);
    if (item.rangeEnd.length === 0) return Buffer.compare(key, item.key) === 0;
    if (Buffer.compare(key, item.key) < 0) return false;
    return (item.rangeEnd.length === 1 && item.rangeEnd[0] === 0) || Buffer.compare(key, item.rangeEnd) < 0;
  }
});
