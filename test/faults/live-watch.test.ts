import { describe, expect, it } from "vitest";
import { GrpcError, GrpcStatus, createGrpcServer, etcdCodecs, type GrpcServer, type WatchCreateRequest, type WatchRequest } from "../../src/api/mod.js";
import type { Event, WatchResponse } from "../../src/client/mod.js";
import { Xoshiro128 } from "../../src/lib/prng.js";
import type { FinalValue } from "./check/durability.js";
import type { Operation } from "./check/history.js";
import { checkWatch } from "./check/watch.js";
import {
  LAG_MS_MAX, LiveWatcher, RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN, SILENCE_MS_MAX, StreamFreshness, WatchProgress, otherEndpoint,
  reconnectBackoffMs, type StreamLimits, type StreamRecord,
} from "./live-watch.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function put(key: string, value: string, revision: number): Event {
  return { type: 0, kv: { key: bytes(key), value: bytes(value), createRevision: revision, modRevision: revision, version: 1, lease: 0n } };
}

function deletion(key: string, revision: number): Event {
  return { type: 1, kv: { key: bytes(key), value: new Uint8Array(0), createRevision: 0, modRevision: revision, version: 0, lease: 0n } };
}

function response(fields: Partial<WatchResponse> & { revision?: number }): WatchResponse {
  const { revision, ...rest } = fields;
  return {
    header: { clusterId: 1n, memberId: 1n, revision: revision ?? 0, raftTerm: 2 },
    watchId: 0, created: false, canceled: false, compactRevision: 0, cancelReason: "", fragment: false, events: [], ...rest,
  };
}

const history: Operation[] = [
  { id: 0, client: 0, key: "faults/a", kind: "write", value: "a1", revision: 2, startMs: 0, endMs: 1, outcome: "ok" },
  { id: 1, client: 1, key: "faults/b", kind: "write", value: "b1", revision: 3, startMs: 0, endMs: 2, outcome: "ok" },
  { id: 2, client: 0, key: "faults/b", kind: "delete", deleted: 1, revision: 4, startMs: 2, endMs: 3, outcome: "ok" },
];
const final = new Map<string, FinalValue>([["faults/a", { value: "a1", modRevision: 2 }], ["faults/b", { value: null, modRevision: 0 }]]);

describe("the live watcher's progress", () => {
  it("starts at revision 1 and resumes one past the newest event it saw", () => {
    const progress = new WatchProgress();
    expect(progress.resumeRevision).toBe(1);
    expect(progress.take(response({ created: true, revision: 9 }))).toEqual({ kind: "created" });
    // The created header is the member's revision, not how far the watch has delivered.
    expect(progress.reachedRevision).toBe(0);
    expect(progress.take(response({ revision: 3, events: [put("faults/a", "a1", 2), put("faults/b", "b1", 3)] }))).toEqual({ kind: "events", count: 2 });
    expect(progress.resumeRevision).toBe(4);
    expect(progress.reachedRevision).toBe(3);
  });

  it("does not move the resume revision on a progress answer, only how far the watch is known complete", () => {
    const progress = new WatchProgress();
    progress.take(response({ revision: 2, events: [put("faults/a", "a1", 2)] }));
    // Revisions 3..7 touched keys outside the prefix: nothing to resume past, but the member vouches for them.
    expect(progress.take(response({ watchId: -1, revision: 7 }))).toEqual({ kind: "progress", revision: 7 });
    expect(progress.resumeRevision).toBe(3);
    expect(progress.reachedRevision).toBe(7);
    // A member that is behind answers with an older revision; what was vouched for stays.
    progress.take(response({ watchId: -1, revision: 5 }));
    expect(progress.reachedRevision).toBe(7);
  });

  it("keeps a duplicate the server sent, so the checker reports it", () => {
    const progress = new WatchProgress();
    progress.take(response({ revision: 3, events: [put("faults/a", "a1", 2), put("faults/b", "b1", 3)] }));
    // A member after a reconnect (or the same stream) sending revision 3 again.
    progress.take(response({ revision: 4, events: [put("faults/b", "b1", 3), deletion("faults/b", 4)] }));
    expect(progress.events.map((event) => event.revision)).toEqual([2, 3, 3, 4]);
    expect(progress.resumeRevision).toBe(5);
    const report = checkWatch(progress.events, history, final, { finalRevision: 4, contiguous: false });
    expect(report.valid).toBe(false);
    expect(report.violations.map((violation) => violation.kind)).toContain("duplicate");
  });

  it("keeps an event older than one already seen, and resumes past the newest", () => {
    const progress = new WatchProgress();
    progress.take(response({ revision: 3, events: [put("faults/b", "b1", 3)] }));
    progress.take(response({ revision: 3, events: [put("faults/a", "a1", 2)] }));
    expect(progress.resumeRevision).toBe(4);
    const report = checkWatch(progress.events, history.slice(0, 2), new Map([...final, ["faults/b", { value: "b1", modRevision: 3 }]]), { contiguous: false });
    expect(report.violations.map((violation) => violation.kind)).toContain("order");
  });

  it("passes a clean record of the same changes through the checker", () => {
    const progress = new WatchProgress();
    progress.take(response({ created: true, revision: 4 }));
    progress.take(response({ revision: 3, events: [put("faults/a", "a1", 2), put("faults/b", "b1", 3)] }));
    progress.take(response({ revision: 4, events: [deletion("faults/b", 4)] }));
    expect(checkWatch(progress.events, history, final, { finalRevision: 4 })).toMatchObject({ valid: true, events: 3 });
  });

  it("tells a compaction from other cancellations and refusals", () => {
    const progress = new WatchProgress();
    expect(progress.take(response({ canceled: true, compactRevision: 40, revision: 50 }))).toEqual({ kind: "compacted", compactRevision: 40 });
    expect(progress.take(response({ canceled: true, cancelReason: "gone" }))).toEqual({ kind: "canceled", reason: "gone" });
    expect(progress.take(response({ created: true, canceled: true, cancelReason: "too many" }))).toEqual({ kind: "refused", reason: "too many" });
    expect(progress.reachedRevision).toBe(0);
  });

  it("reports an event without a key-value instead of inventing one", () => {
    const progress = new WatchProgress();
    progress.take(response({ revision: 2, events: [{ type: 0 }] }));
    expect(progress.events).toEqual([]);
    expect(progress.malformed).toHaveLength(1);
  });
});

describe("the live watcher's judgement of a stream", () => {
  const limits = { silenceMsMax: SILENCE_MS_MAX, lagMsMax: LAG_MS_MAX };

  it("keeps a stream that answers and delivers what clients were told", () => {
    const freshness = new StreamFreshness(limits, 0, 10);
    let acknowledged = 10;
    for (let nowMs = 500; nowMs <= 60_000; nowMs += 500) {
      acknowledged += 20;
      freshness.heard(nowMs);
      // It delivers what was acknowledged a moment ago.
      expect(freshness.verdict(nowMs, acknowledged - 20, acknowledged)).toBeNull();
    }
  });

  it("leaves a stream that answers nothing (a paused member)", () => {
    const freshness = new StreamFreshness(limits, 1000, 10);
    expect(freshness.verdict(1000 + SILENCE_MS_MAX, 10, 10)).toBeNull();
    expect(freshness.verdict(1000 + SILENCE_MS_MAX + 1, 10, 10)).toBe("silent");
  });

  it("leaves a stream that answers but stays behind what clients were told (a member cut off from the leader)", () => {
    const freshness = new StreamFreshness(limits, 0, 100);
    for (let nowMs = 500; nowMs <= LAG_MS_MAX; nowMs += 500) {
      freshness.heard(nowMs);
      expect(freshness.verdict(nowMs, 90, 100 + nowMs)).toBeNull();
    }
    freshness.heard(LAG_MS_MAX + 500);
    expect(freshness.verdict(LAG_MS_MAX + 500, 90, 200)).toBe("behind");
  });

  it("does not call a stream behind while nothing new was acknowledged (the whole cluster down, or the clients done)", () => {
    const freshness = new StreamFreshness(limits, 0, 100);
    for (let nowMs = 500; nowMs <= 4 * LAG_MS_MAX; nowMs += 500) {
      freshness.heard(nowMs);
      expect(freshness.verdict(nowMs, 100, 100)).toBeNull();
    }
  });
});

describe("the live watcher's reconnects", () => {
  const endpoints = ["10.77.1.2:2379", "10.77.2.2:2379", "10.77.3.2:2379"];

  it("moves to another member, each of the others in turn over many draws", () => {
    const random = new Xoshiro128(7);
    const seen = new Set<string>();
    for (let draw = 0; draw < 200; draw++) {
      const next = otherEndpoint(endpoints, endpoints[0], random);
      expect(next).not.toBe(endpoints[0]);
      seen.add(next);
    }
    expect([...seen].sort()).toEqual(endpoints.slice(1));
    expect(otherEndpoint(endpoints.slice(0, 1), endpoints[0], random)).toBe(endpoints[0]);
  });

  it("reopens at once after a stream that delivered, and backs off, bounded, after ones that did not", () => {
    expect(reconnectBackoffMs(0)).toBe(0);
    expect(reconnectBackoffMs(1)).toBe(RECONNECT_BACKOFF_MS_MIN);
    expect(reconnectBackoffMs(2)).toBe(2 * RECONNECT_BACKOFF_MS_MIN);
    expect(reconnectBackoffMs(50)).toBe(RECONNECT_BACKOFF_MS_MAX);
  });
});

// ------------------------------------------------------------------ the watcher's loop against scripted members

/** What one scripted member does with one Watch stream: the create request is already read. */
type StreamScript = (stream: ScriptedStream) => Promise<void>;

interface ScriptedStream {
  readonly create: WatchCreateRequest;
  send(response: WatchResponse): Promise<void>;
  /** Answers every progress request with `revision` until the client leaves. */
  answerProgress(revision: number): Promise<void>;
  /** Reads requests without answering until the client leaves (a member that hears but never speaks). */
  ignoreRequests(): Promise<void>;
  /** Stops this member at once, dropping its connections (as a kill does). */
  kill(): Promise<void>;
}

interface ScriptedMembers {
  readonly endpoints: string[];
  /** Each stream opened, in order: the member it reached and the revision it asked for. */
  readonly streams: { endpoint: string; startRevision: number }[];
  close(): Promise<void>;
}

/** Members that each serve only Watch; the n-th stream opened on any of them follows scripts[n]. */
async function scriptedMembers(count: number, scripts: readonly StreamScript[]): Promise<ScriptedMembers> {
  const servers: GrpcServer[] = [];
  const endpoints: string[] = [];
  const streams: ScriptedMembers["streams"] = [];
  for (let index = 0; index < count; index++) {
    const server = createGrpcServer();
    let endpoint = "";
    server.registerBidiStream<WatchRequest, WatchResponse>("/etcdserverpb.Watch/Watch", { request: etcdCodecs.watchRequest, response: etcdCodecs.watchResponse },
      async (requests, responses) => {
        const iterator = requests[Symbol.asyncIterator]();
        const first = await iterator.next();
        if (first.done === true || !("createRequest" in first.value)) throw new Error("the watcher's first request is not a create");
        const script = scripts[streams.length];
        streams.push({ endpoint, startRevision: first.value.createRequest.startRevision });
        if (script === undefined) throw new Error(`no script for stream ${streams.length}`);
        const ignoreRequests = async (): Promise<void> => {
          while ((await iterator.next()).done !== true) { /* heard, not answered */ }
        };
        await script({
          create: first.value.createRequest,
          send: (response) => responses.send(response),
          answerProgress: async (revision) => {
            for (let request = await iterator.next(); request.done !== true; request = await iterator.next()) {
              if ("progressRequest" in request.value) await responses.send(response({ watchId: -1, revision }));
            }
          },
          ignoreRequests,
          kill: () => server.close(0),
        });
      });
    const address = await server.listen(0);
    endpoint = `127.0.0.1:${address.port}`;
    endpoints.push(endpoint);
    servers.push(server);
  }
  return { endpoints, streams, close: async () => void await Promise.all(servers.map((server) => server.close(0))) };
}

const FAST: StreamLimits = { progressRequestIntervalMs: 50, silenceMsMax: 300, lagMsMax: 400 };

function watcherOn(endpoints: readonly string[], acknowledgedRevision: number, seed = 1) {
  const records: StreamRecord[] = [];
  const watcher = new LiveWatcher({
    endpoints, prefix: "faults/", random: new Xoshiro128(seed), now: () => performance.now(), acknowledgedRevision: () => acknowledgedRevision,
    recordStream: (record) => records.push(record), log: () => undefined, limits: FAST,
  });
  return { watcher, records };
}

/** Starts a watcher on the scripted members, waits until it reaches `revision` (or the bound), then stops it and them. */
async function followUntil(members: { endpoints: readonly string[]; close(): Promise<void> }, revision: number, options: { endpoints?: readonly string[]; seed?: number; boundMs?: number } = {}) {
  const { watcher, records } = watcherOn(options.endpoints ?? members.endpoints, revision, options.seed);
  let reached: boolean;
  try {
    watcher.start();
    reached = await watcher.waitForRevision(revision, options.boundMs ?? 5000);
  } finally {
    await watcher.stop();
    await members.close();
  }
  return { watcher, records, reached };
}

/** A member script: the rest of the history (faults/b written at 3, deleted at 4), then answers progress requests at 4. */
async function deliversThroughFour(stream: Parameters<Parameters<typeof scriptedMembers>[1][number]>[0]): Promise<void> {
  await stream.send(response({ created: true, revision: 4 }));
  await stream.send(response({ revision: 4, events: [put("faults/b", "b1", 3), deletion("faults/b", 4)] }));
  await stream.answerProgress(4);
}

describe("the live watcher on scripted members", () => {
  it("resumes on another member from the revision after its last event, and keeps the duplicate that member sent", async () => {
    const members = await scriptedMembers(2, [
      async (stream) => {
        await stream.send(response({ created: true, revision: 3 }));
        await stream.send(response({ revision: 3, events: [put("faults/a", "a1", 2), put("faults/b", "b1", 3)] }));
        await stream.kill();
      },
      deliversThroughFour,
    ]);
    const { watcher, records, reached } = await followUntil(members, 4);
    expect(reached).toBe(true);
    expect(members.streams.map((stream) => stream.startRevision)).toEqual([1, 4]);
    expect(members.streams[1].endpoint).not.toBe(members.streams[0].endpoint);
    expect(watcher.progress.events.map((event) => event.revision)).toEqual([2, 3, 3, 4]);
    expect(watcher.reconnects).toBe(1);
    expect(watcher.reconnectsByCause).toEqual({ broken: 1 });
    expect(records.map((record) => record.end)).toEqual(["broken", "stopped"]);
    const report = checkWatch(watcher.progress.events, history, final, { finalRevision: 4, contiguous: false });
    expect(report.violations.map((violation) => violation.kind)).toEqual(["duplicate"]);
  });

  it("resumes elsewhere when a member ends the watch with an error status", async () => {
    const members = await scriptedMembers(2, [
      async (stream) => {
        await stream.send(response({ created: true, revision: 2 }));
        await stream.send(response({ revision: 2, events: [put("faults/a", "a1", 2)] }));
        throw new GrpcError(GrpcStatus.unavailable, "etcdserver: no leader");
      },
      deliversThroughFour,
    ]);
    const { watcher, records, reached } = await followUntil(members, 4);
    expect(reached).toBe(true);
    expect(members.streams.map((stream) => stream.startRevision)).toEqual([1, 3]);
    // The status ends the call at once (the channel half-closes our side when the server's ends), not after the silence rule.
    expect(records[0].end).toBe("broken");
    expect(checkWatch(watcher.progress.events, history, final, { finalRevision: 4 })).toMatchObject({ valid: true, events: 3 });
  });

  it("leaves a member that stops answering, then one that stays behind what clients were told", async () => {
    const members = await scriptedMembers(3, [
      async (stream) => {
        await stream.send(response({ created: true, revision: 4 }));
        await stream.ignoreRequests();
      },
      async (stream) => {
        await stream.send(response({ created: true, revision: 2 }));
        await stream.send(response({ revision: 2, events: [put("faults/a", "a1", 2)] }));
        await stream.answerProgress(2);
      },
      deliversThroughFour,
    ]);
    const { watcher, records, reached } = await followUntil(members, 4);
    expect(reached).toBe(true);
    expect(records.map((record) => record.end)).toEqual(["silent", "behind", "stopped"]);
    expect(members.streams.map((stream) => stream.startRevision)).toEqual([1, 1, 3]);
    for (let index = 1; index < members.streams.length; index++) expect(members.streams[index].endpoint).not.toBe(members.streams[index - 1].endpoint);
    expect(watcher.reconnects).toBe(2);
    expect(watcher.reconnectsByCause).toEqual({ silent: 1, behind: 1 });
    expect(checkWatch(watcher.progress.events, history, final, { finalRevision: 4 })).toMatchObject({ valid: true, events: 3 });
    expect(watcher.violations).toEqual([]);
  });

  it("moves past a member nobody answers at", async () => {
    const members = await scriptedMembers(1, [
      async (stream) => {
        await stream.send(response({ created: true, revision: 4 }));
        await stream.send(response({ revision: 4, events: [put("faults/a", "a1", 2), put("faults/b", "b1", 3), deletion("faults/b", 4)] }));
        await stream.answerProgress(4);
      },
    ]);
    const closed = createGrpcServer();
    const dead = `127.0.0.1:${(await closed.listen(0)).port}`;
    await closed.close(0);
    const endpoints = [dead, members.endpoints[0]];
    // A seed whose first draw is the dead member.
    let seed = 1;
    while (new Xoshiro128(seed).pick(endpoints) !== dead) seed++;
    const { watcher, records, reached } = await followUntil(members, 4, { endpoints, seed });
    expect(reached).toBe(true);
    expect(records.map((record) => [record.endpoint, record.end])).toEqual([[dead, "unreachable"], [members.endpoints[0], "stopped"]]);
    expect(watcher.progress.events).toHaveLength(3);
  });

  it("reports a compaction as a violation and gives up, without waiting out the bound", async () => {
    const members = await scriptedMembers(2, [
      async (stream) => {
        await stream.send(response({ created: true, revision: 9 }));
        await stream.send(response({ canceled: true, compactRevision: 5, revision: 9 }));
        await stream.ignoreRequests();
      },
    ]);
    const started = performance.now();
    const { watcher, reached } = await followUntil(members, 9, { boundMs: 10_000 });
    expect(reached).toBe(false);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(members.streams).toHaveLength(1);
    expect(watcher.violations).toHaveLength(2);
    expect(watcher.violations[0]).toMatch(/canceled as compacted \(compacted up to 5\)/);
    expect(watcher.violations[1]).toMatch(/live watcher never reached revision 9/);
  });
});
