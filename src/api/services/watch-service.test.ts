import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { encodeCommand, Mvcc, putRequest, WatchHub, type KvCommand } from "../../kv/mod.js";
import { MemoryKvStore } from "../../storage/memory-kv/mod.js";
import type { CallContext } from "../grpc/server.js";
import type { WatchCreateRequest, WatchRequest, WatchResponse } from "../protobuf/messages.js";
import { INVALID_WATCH_ID, WatchService } from "./watch-service.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => new TextDecoder().decode(value);

/** A request stream the test feeds by hand. */
class Requests implements AsyncIterable<WatchRequest> {
  private readonly items: WatchRequest[] = [];
  private waiter: ((result: IteratorResult<WatchRequest>) => void) | null = null;
  push(request: WatchRequest): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter({ value: request, done: false });
    } else this.items.push(request);
  }
  [Symbol.asyncIterator](): AsyncIterator<WatchRequest> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        return new Promise((resolve) => (this.waiter = resolve));
      },
    };
  }
}

/** A response sink whose sends can be held (a client that does not read). */
class Sink {
  readonly sent: WatchResponse[] = [];
  held = false;
  private release: (() => void)[] = [];
  async send(message: WatchResponse): Promise<void> {
    this.sent.push(message);
    if (this.held) await new Promise<void>((resolve) => this.release.push(resolve));
  }
  resume(): void {
    this.held = false;
    for (const resolve of this.release.splice(0)) resolve();
  }
}

function create(key: string, fields: Partial<WatchCreateRequest> = {}): WatchRequest {
  return { createRequest: { key: bytes(key), rangeEnd: new Uint8Array(0), startRevision: 0, progressNotify: false, filters: [], prevKv: false, watchId: 0, fragment: false, ...fields } };
}

function setup(options: { bufferedEventsMax?: number; progressNotifyIntervalMs?: number; learner?: boolean } = {}) {
  const mvcc = new Mvcc(new MemoryKvStore());
  const hub = new WatchHub(mvcc, { bufferedEventsMax: options.bufferedEventsMax ?? 100 });
  let index = 0;
  const apply = (command: KvCommand) => {
    const applied = mvcc.applyEntries([{ term: 1, index: ++index, type: 0, data: encodeCommand(command) }]);
    hub.applied(applied);
    return applied[0].revision;
  };
  const backend = {
    clusterId: 1n, memberId: 2n, raftTerm: () => 3, isLearner: () => options.learner ?? false,
    hub, currentRevision: () => mvcc.currentRevision(),
  };
  const service = new WatchService(backend, { progressNotifyIntervalMs: options.progressNotifyIntervalMs ?? 60_000 });
  const controller = new AbortController();
  const context: CallContext = { signal: controller.signal, peer: "test", deadlineMs: undefined, metadata: {}, requestBytes: 0 };
  const requests = new Requests();
  const sink = new Sink();
  const call = service.watch(requests, sink, context);
  return {
    hub, requests, sink, controller, call,
    put: (key: string, value: string) => apply({ type: "put", request: putRequest(bytes(key), bytes(value)) }),
  };
}

async function until(condition: () => boolean, turnsMax = 10_000): Promise<void> {
  for (let turn = 0; turn < turnsMax && !condition(); turn++) await nextTurn();
  expect(condition()).toBe(true);
}

describe("WatchService", () => {
  it("answers create with the watch id before any event, and sends each watch its events", async () => {
    const t = setup();
    t.put("a", "0");
    t.requests.push(create("a", { startRevision: 1 }));
    t.requests.push(create("b"));
    await until(() => t.sink.sent.length >= 3);
    const [first, second, third] = t.sink.sent;
    expect(first).toMatchObject({ created: true, watchId: 0, header: { revision: 2, clusterId: 1n, memberId: 2n, raftTerm: 3 } });
    // The history event of watch 0 comes after its created answer (control answers go first).
    expect(second).toMatchObject({ created: true, watchId: 1 });
    expect(third).toMatchObject({ watchId: 0, events: [{ type: 0, kv: { modRevision: 2 } }] });
    t.put("b", "1");
    await until(() => t.sink.sent.length >= 4);
    expect(t.sink.sent[3]).toMatchObject({ watchId: 1, header: { revision: 3 }, events: [{ kv: { key: bytes("b"), value: bytes("1") } }] });
    t.controller.abort();
    await t.call;
    expect(t.hub.watcherCount()).toBe(0);
  });

  it("refuses a duplicate id, an empty range and a negative start revision with etcd's reasons, and keeps the stream", async () => {
    const t = setup();
    t.requests.push(create("a", { watchId: 5 }));
    t.requests.push(create("a", { watchId: 5 }));
    t.requests.push(create("b", { rangeEnd: bytes("a") }));
    t.requests.push(create("a", { startRevision: -1 }));
    await until(() => t.sink.sent.length >= 4);
    expect(t.sink.sent.map((response) => [response.watchId, response.created, response.canceled, response.cancelReason])).toEqual([
      [5, true, false, ""],
      [INVALID_WATCH_ID, true, true, "mvcc: duplicate watch ID provided on the WatchStream"],
      [INVALID_WATCH_ID, true, true, "mvcc: watcher range is empty"],
      [INVALID_WATCH_ID, true, true, "etcdserver: mvcc: required revision has been compacted"],
    ]);
    t.put("a", "x");
    await until(() => t.sink.sent.length >= 5);
    expect(t.sink.sent[4]).toMatchObject({ watchId: 5, events: [{ kv: { value: bytes("x") } }] });
    t.controller.abort();
    await t.call;
  });

  it("skips a request that carries none of create, cancel and progress, as etcd does, and keeps the stream", async () => {
    const t = setup();
    t.requests.push({ none: {} });
    t.requests.push(create("a"));
    await until(() => t.sink.sent.length >= 1);
    expect(t.sink.sent[0]).toMatchObject({ created: true, watchId: 0 });
    t.put("a", "1");
    await until(() => t.sink.sent.length >= 2);
    expect(t.sink.sent[1]).toMatchObject({ watchId: 0, events: [{ kv: { key: bytes("a"), value: bytes("1") } }] });
    t.controller.abort();
    await t.call;
  });

  it("cancels a watch on request and ignores unknown ids", async () => {
    const t = setup();
    t.requests.push(create("a"));
    await until(() => t.sink.sent.length >= 1);
    t.requests.push({ cancelRequest: { watchId: 9 } });
    t.requests.push({ cancelRequest: { watchId: 0 } });
    await until(() => t.sink.sent.length >= 2);
    expect(t.sink.sent[1]).toMatchObject({ watchId: 0, canceled: true, created: false });
    t.put("a", "after");
    for (let turn = 0; turn < 50; turn++) await nextTurn();
    expect(t.sink.sent).toHaveLength(2);
    expect(t.hub.watcherCount()).toBe(0);
    t.controller.abort();
    await t.call;
  });

  it("answers a progress request with watch id -1 at the current revision, and sends progress to an idle progress_notify watch", async () => {
    const t = setup({ progressNotifyIntervalMs: 20 });
    t.put("other", "1");
    t.requests.push(create("quiet", { progressNotify: true }));
    t.requests.push({ progressRequest: {} });
    await until(() => t.sink.sent.some((response) => response.watchId === INVALID_WATCH_ID));
    expect(t.sink.sent.find((response) => response.watchId === INVALID_WATCH_ID)).toMatchObject({ events: [], header: { revision: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 120));
    const notifications = t.sink.sent.filter((response) => response.watchId === 0 && !response.created);
    expect(notifications.length).toBeGreaterThan(0);
    for (const notification of notifications) expect(notification).toMatchObject({ events: [], header: { revision: 2 } });
    t.controller.abort();
    await t.call;
  });

  it("while the client does not read, holds at most the bound for the watch, never stalls the writes, and then delivers everything in order", async () => {
    const t = setup({ bufferedEventsMax: 10 });
    t.requests.push(create("k"));
    await until(() => t.sink.sent.length >= 1);
    t.sink.held = true;
    t.put("k", "0");
    await until(() => t.sink.sent.length >= 2);
    let peak = 0;
    for (let i = 1; i < 500; i++) {
      t.put("k", String(i));
      peak = Math.max(peak, t.hub.bufferedEvents());
      if (i % 50 === 0) await nextTurn();
    }
    expect(peak).toBeLessThanOrEqual(10);
    expect(t.hub.overflowCount()).toBe(1);
    expect(t.sink.sent).toHaveLength(2);
    t.sink.resume();
    await until(() => t.sink.sent.flatMap((response) => response.events).length >= 500);
    expect(t.sink.sent.flatMap((response) => response.events).map((event) => text(event.kv?.value))).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    t.controller.abort();
    await t.call;
  });

  it("lets a live watch send while another watch on the same stream is still replaying a long history", async () => {
    const t = setup();
    for (let i = 0; i < 5000; i++) t.put(`history/${i % 50}`, String(i));
    t.requests.push(create("live"));
    await until(() => t.sink.sent.length >= 1);
    // Held, so the replay cannot finish before the live write happens.
    t.sink.held = true;
    t.requests.push(create("history/", { rangeEnd: bytes("history0"), startRevision: 1 }));
    await until(() => t.sink.sent.length >= 2);
    t.put("live", "now");
    t.sink.resume();
    await until(() => t.sink.sent.flatMap((response) => response.events).length >= 5001);
    const order = t.sink.sent.filter((response) => response.events.length > 0).map((response) => response.watchId);
    const liveAt = order.indexOf(0);
    // Deliveries take turns: the live event goes out long before the replay's last delivery.
    expect(liveAt).toBeGreaterThan(0);
    expect(liveAt).toBeLessThan(order.lastIndexOf(1));
    const replayed = t.sink.sent.filter((response) => response.watchId === 1).flatMap((response) => response.events);
    expect(replayed.map((event) => event.kv?.modRevision)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 2));
    t.controller.abort();
    await t.call;
  });

  it("refuses the stream on a learner, as etcd does", async () => {
    const t = setup({ learner: true });
    await expect(t.call).rejects.toThrow("etcdserver: rpc not supported for learner");
  });
});
