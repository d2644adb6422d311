/**
 * Watch against a 3-member cluster of real `cairn start` processes, through
 * the etcd3 npm client, Debian's etcdctl (3.4) and Cairn's own client:
 * history replay, prev_kv, filters, progress, cancel, compaction cancel, a
 * slow consumer that must not cost memory or hold back anyone else, and a
 * watch kept across the leader's death.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3, IKeyValue } from "etcd3";
import {
  Channel, Client, IndeterminateError, WatchCompactedError, type Event, type WatchResponse, type WatchUpdate,
} from "../../src/client/mod.js";
import { watchMethods } from "../../src/client/methods.js";
import { parseEndpoint } from "../../src/client/endpoint.js";
import { Cluster, type Member } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, pause, withLogs } from "./support.js";
import { execFile } from "node:child_process";
import { ETCDCTL, etcdctl, httpGet, metricValue } from "./tools.js";

/** The server's per-watcher bound for this cluster (--watch-buffered-events-max). */
const BUFFERED_EVENTS_MAX = 200;
const PROGRESS_INTERVAL_MS = 300;
const SLOW_CONSUMER_PUTS = 10_000;
const SLOW_CONSUMER_WRITERS = 16;
const KILL_TEST_PUTS = 300;
const TEST_TIMEOUT_MS = 120_000;

const text = (bytes: Uint8Array | undefined): string => (bytes === undefined ? "" : Buffer.from(bytes).toString());

/** Reads updates from a watch until `enough` says so or the time runs out. */
async function collect(updates: AsyncIterable<WatchUpdate>, enough: (seen: WatchUpdate[]) => boolean, timeoutMs: number): Promise<WatchUpdate[]> {
  const seen: WatchUpdate[] = [];
  const deadline = Date.now() + timeoutMs;
  const iterator = updates[Symbol.asyncIterator]();
  try {
    while (!enough(seen)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        iterator.next(),
        new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), remaining))),
      ]);
      clearTimeout(timer);
      if (next === "timeout" || next.done) break;
      seen.push(next.value);
    }
  } finally {
    void iterator.return?.();
  }
  return seen;
}

const eventsOf = (updates: readonly WatchUpdate[]): Event[] => updates.flatMap((update) => [...update.events]);
const brief = (event: Event) => `${event.type === 1 ? "DELETE" : "PUT"} ${text(event.kv?.key)}=${text(event.kv?.value)}@${event.kv?.modRevision}` +
  (event.prevKv === undefined ? "" : ` was ${text(event.prevKv.value)}`);

/** Runs `etcdctl watch` for a while and returns what it printed by then. */
function watchWithEtcdctl(endpoints: readonly string[], args: readonly string[], runMs: number): Promise<string> {
  return new Promise((resolveOutput) => {
    execFile(ETCDCTL, [`--endpoints=${endpoints.join(",")}`, "--dial-timeout=3s", "watch", ...args], {
      env: { ...process.env, ETCDCTL_API: "3" }, timeout: runMs, encoding: "utf8",
    }, (_error, stdout) => resolveOutput(stdout));
  });
}

/** A raw Watch stream on one member: for what the client hides (watch ids, cancel, progress requests, not reading at all). */
function rawStream(channel: Channel, key: string, fields: { prefix?: boolean; watchId?: number } = {}, signal: AbortSignal) {
  const keyBytes = Buffer.from(key);
  const rangeEnd = fields.prefix ? Buffer.from(key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1)) : new Uint8Array(0);
  const create = (startRevision = 0, watchId = fields.watchId ?? 0) => ({
    createRequest: { key: keyBytes, rangeEnd, startRevision, progressNotify: false, filters: [], prevKv: false, watchId, fragment: false },
  });
  const call = channel.bidiStream(watchMethods.watch, create(), signal);
  return { call, create };
}

describe("Watch on a 3-member cluster", () => {
  let cluster: Cluster | undefined;
  let etcd: Etcd3;
  let client: Client;
  const lifetime = new AbortController();
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  const ctl = (args: string[]) => etcdctl(cluster!.endpoints(), args);
  const channels: Channel[] = [];
  const channelTo = (member: Member): Channel => {
    const channel = new Channel(parseEndpoint(member.endpoint), { dialTimeoutMs: 2000, receiveMessageBytesMax: 64 * 1024 * 1024 });
    channels.push(channel);
    return channel;
  };
  const follower = async (): Promise<Member> => {
    const { leader } = await cluster!.waitForLeader(10_000);
    return cluster!.members.find((member) => member !== leader && member.running)!;
  };

  beforeAll(async () => {
    cluster = await Cluster.start({
      metrics: true,
      flags: ["--watch-buffered-events-max", String(BUFFERED_EVENTS_MAX), "--experimental-watch-progress-notify-interval", `${PROGRESS_INTERVAL_MS}ms`],
    });
    etcd = cluster.client();
    client = new Client({ endpoints: cluster.endpoints() });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    lifetime.abort();
    for (const channel of channels) channel.close();
    await client?.close();
    await cluster?.stop();
  });

  it("replays history with prev_kv through etcd3, then follows new changes", run(async () => {
    const first = Number((await etcd.put("hist/a").value("1").exec()).header.revision);
    await etcd.put("hist/a").value("2");
    await etcd.delete().key("hist/a");
    await etcd.put("hist/b").value("3");
    const seen: string[] = [];
    const watcher = await etcd.watch().prefix("hist/").startRevision(String(first)).withPreviousKV().create();
    const record = (type: string) => (kv: IKeyValue, previous?: IKeyValue) =>
      seen.push(`${type} ${kv.key.toString()}=${kv.value.toString()}@${kv.mod_revision}${previous ? ` was ${previous.value.toString()}` : ""}`);
    watcher.on("put", record("PUT"));
    watcher.on("delete", record("DELETE"));
    const deadline = Date.now() + 10_000;
    while (seen.length < 4 && Date.now() < deadline) await pause(20);
    await etcd.put("hist/b").value("4");
    while (seen.length < 5 && Date.now() < deadline) await pause(20);
    await watcher.cancel();
    expect(seen).toEqual([
      `PUT hist/a=1@${first}`, `PUT hist/a=2@${first + 1} was 1`, `DELETE hist/a=@${first + 2} was 2`, `PUT hist/b=3@${first + 3}`,
      `PUT hist/b=4@${first + 4} was 3`,
    ]);
  }), TEST_TIMEOUT_MS);

  it("replays history with --prev-kv through etcdctl watch, and says so when the revision was compacted", run(async () => {
    const first = Number((await etcd.put("ctl/k").value("one").exec()).header.revision);
    await etcd.put("ctl/k").value("two");
    await etcd.put("ctl/other").value("x");
    // etcdctl watch runs until killed: end it once the replay has had time to print.
    const output = await watchWithEtcdctl(cluster!.endpoints(), ["ctl/k", `--rev=${first}`, "--prev-kv"], 3000);
    expect(output).toBe("PUT\nctl/k\none\nPUT\nctl/k\none\nctl/k\ntwo\n");
    const current = Number((await etcd.put("ctl/k").value("three").exec()).header.revision);
    expect(await ctl(["compaction", String(current)])).toMatchObject({ code: 0, stdout: `compacted revision ${current}\n` });
    const compacted = await ctl(["watch", "ctl/k", `--rev=${first}`]);
    expect(compacted.code).not.toBe(0);
    expect(compacted.stdout).toBe("");
    expect(compacted.stderr).toContain("watch was canceled (etcdserver: mvcc: required revision has been compacted)");
    // Cairn's client reports the same with the compact revision.
    const attempt = collect(client.watch.watch("ctl/k", { startRevision: first }), () => false, 5000);
    await expect(attempt).rejects.toThrow(WatchCompactedError);
    await expect(attempt).rejects.toMatchObject({ compactRevision: current });
  }), TEST_TIMEOUT_MS);

  it("filters out puts or deletes, served by a follower", run(async () => {
    const member = await follower();
    const local = new Client({ endpoints: [member.endpoint] });
    try {
      const start = Number((await etcd.put("filter/k").value("1").exec()).header.revision);
      await etcd.delete().key("filter/k");
      await etcd.put("filter/k").value("2");
      await etcd.delete().key("filter/k");
      const noPut = await collect(local.watch.watch("filter/k", { startRevision: start, noPut: true }), (seen) => eventsOf(seen).length >= 2, 10_000);
      const noDelete = await collect(local.watch.watch("filter/k", { startRevision: start, noDelete: true }), (seen) => eventsOf(seen).length >= 2, 10_000);
      expect(eventsOf(noPut).map(brief)).toEqual([`DELETE filter/k=@${start + 1}`, `DELETE filter/k=@${start + 3}`]);
      expect(eventsOf(noDelete).map(brief)).toEqual([`PUT filter/k=1@${start}`, `PUT filter/k=2@${start + 2}`]);
      expect(noPut.every((update) => update.endpoint === member.endpoint)).toBe(true);
    } finally {
      await local.close();
    }
  }), TEST_TIMEOUT_MS);

  it("sends progress notifications to an idle watch and answers a progress request with watch id -1", run(async () => {
    const updates = client.watch.watch("idle/never-written", { progressNotify: true });
    const current = Number((await etcd.put("idle/other").value("x").exec()).header.revision);
    const progress = await collect(updates, (seen) => seen.some((update) => update.revision >= current), 10_000);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((update) => update.events.length === 0)).toBe(true);
    expect(progress.at(-1)!.revision).toBeGreaterThanOrEqual(current);

    const stop = new AbortController();
    const { call } = rawStream(channelTo(cluster!.members[0]), "idle/k", {}, AbortSignal.any([stop.signal, lifetime.signal]));
    const iterator = call.responses[Symbol.asyncIterator]();
    const created = (await iterator.next()).value as WatchResponse;
    expect(created).toMatchObject({ created: true, watchId: 0 });
    call.send({ progressRequest: {} });
    const answer = (await iterator.next()).value as WatchResponse;
    expect(answer.watchId).toBe(-1);
    expect(answer.events).toEqual([]);
    expect(answer.header!.revision).toBeGreaterThanOrEqual(current);
    stop.abort();
  }), TEST_TIMEOUT_MS);

  it("runs many watches on one stream with their own ids, cancels one, and refuses bad creates with etcd's reasons", run(async () => {
    const stop = new AbortController();
    const { call, create } = rawStream(channelTo(cluster!.members[1]), "many/a", {}, AbortSignal.any([stop.signal, lifetime.signal]));
    const iterator = call.responses[Symbol.asyncIterator]();
    const next = async () => (await iterator.next()).value as WatchResponse;
    expect(await next()).toMatchObject({ created: true, canceled: false, watchId: 0 });
    call.send(create(0, 7));
    expect(await next()).toMatchObject({ created: true, canceled: false, watchId: 7 });
    call.send(create(0, 0));
    expect(await next()).toMatchObject({ created: true, canceled: false, watchId: 1 });
    call.send(create(0, 7));
    expect(await next()).toMatchObject({ created: true, canceled: true, watchId: -1, cancelReason: "mvcc: duplicate watch ID provided on the WatchStream" });
    call.send({ createRequest: { ...create().createRequest, rangeEnd: Buffer.from("many/") } });
    expect(await next()).toMatchObject({ created: true, canceled: true, watchId: -1, cancelReason: "mvcc: watcher range is empty" });
    call.send(create(-1, 0));
    expect(await next()).toMatchObject({ created: true, canceled: true, watchId: -1, cancelReason: "etcdserver: mvcc: required revision has been compacted" });
    call.send({ cancelRequest: { watchId: 7 } });
    expect(await next()).toMatchObject({ canceled: true, watchId: 7 });
    // Canceling an id that is not there is ignored, as etcd does.
    call.send({ cancelRequest: { watchId: 99 } });
    const revision = Number((await etcd.put("many/a").value("v").exec()).header.revision);
    const seen = [await next(), await next()];
    expect(seen.map((response) => response.watchId).sort()).toEqual([0, 1]);
    for (const response of seen) expect(response.events.map(brief)).toEqual([`PUT many/a=v@${revision}`]);
    stop.abort();
  }), TEST_TIMEOUT_MS);

  it("holds at most the configured bound for a watcher that never reads while 10,000 puts go by; others on the same connection get every event; the slow one then catches up from storage with no gap", run(async () => {
    const member = await follower();
    const metrics = async () => (await httpGet(`${member.metricsUrl}/metrics`)).body;
    const overflowsBefore = metricValue(await metrics(), "cairn_watch_buffer_overflows") ?? 0;
    const channel = channelTo(member);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, lifetime.signal]);
    // The slow stream: created, then never read (the client pauses the HTTP/2 stream once a few responses wait).
    const slow = rawStream(channel, "slow/", { prefix: true }, signal);
    const slowIterator = slow.call.responses[Symbol.asyncIterator]();
    expect(((await slowIterator.next()).value as WatchResponse).created).toBe(true);
    // Two watches on another stream of the same connection, read all along.
    const fast = rawStream(channel, "slow/", { prefix: true }, signal);
    fast.call.send(fast.create());
    const fastSeen = new Map<number, number[]>();
    let fastCreated = 0;
    const fastReading = (async () => {
      for await (const response of fast.call.responses) {
        if (response.created) fastCreated++;
        const list = fastSeen.get(response.watchId) ?? [];
        for (const event of response.events) list.push(event.kv!.modRevision);
        fastSeen.set(response.watchId, list);
      }
    })().catch(() => undefined);
    while (fastCreated < 2) await pause(10);

    const first = Number((await etcd.put("slow/start").value("0").exec()).header.revision);
    let peakSampled = 0;
    let bufferedSampled = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const exposition = await metrics();
        peakSampled = Math.max(peakSampled, metricValue(exposition, "cairn_watch_buffered_events_peak") ?? 0);
        bufferedSampled = Math.max(bufferedSampled, metricValue(exposition, "cairn_watch_buffered_events") ?? 0);
        await pause(100);
      }
    })();
    let issued = 1;
    const writer = async () => {
      while (issued < SLOW_CONSUMER_PUTS) {
        const index = issued++;
        await client.kv.put(`slow/${index % 97}`, String(index));
      }
    };
    await Promise.all(Array.from({ length: SLOW_CONSUMER_WRITERS }, writer));
    const last = Number((await client.kv.get("slow/", { prefix: true, limit: 1 })).header!.revision);
    expect(last - first + 1).toBe(SLOW_CONSUMER_PUTS);
    const expected = Array.from({ length: SLOW_CONSUMER_PUTS }, (_, i) => first + i);

    const fastDeadline = Date.now() + 30_000;
    while ([...fastSeen.values()].some((list) => list.length < SLOW_CONSUMER_PUTS) && Date.now() < fastDeadline) await pause(50);
    expect([...fastSeen.keys()].sort()).toEqual([0, 1]);
    for (const list of fastSeen.values()) expect(list).toEqual(expected);

    sampling = false;
    await sampler;
    const exposition = await metrics();
    const peak = metricValue(exposition, "cairn_watch_buffered_events_peak")!;
    const overflows = metricValue(exposition, "cairn_watch_buffer_overflows")!;
    process.stderr.write(`slow consumer: buffered peak ${peak} (bound ${BUFFERED_EVENTS_MAX}), most buffered at once ${bufferedSampled}, overflows ${overflows - overflowsBefore}\n`);
    // The counter the hub keeps: no watcher ever held more than the bound.
    expect(peak).toBeLessThanOrEqual(BUFFERED_EVENTS_MAX);
    expect(Math.max(peak, peakSampled)).toBeGreaterThan(0);
    // The slow watcher did fill its buffer and moved to storage.
    expect(overflows - overflowsBefore).toBeGreaterThanOrEqual(1);
    expect(metricValue(exposition, "etcd_debugging_mvcc_slow_watcher_total")).toBeGreaterThanOrEqual(1);

    // Now read the slow stream: everything, from storage, in order, once.
    const slowSeen: number[] = [];
    const slowDeadline = Date.now() + 60_000;
    while (slowSeen.length < SLOW_CONSUMER_PUTS && Date.now() < slowDeadline) {
      const next = await slowIterator.next();
      if (next.done) break;
      for (const event of (next.value as WatchResponse).events) slowSeen.push(event.kv!.modRevision);
    }
    expect(slowSeen).toEqual(expected);
    stop.abort();
    await fastReading;
  }), TEST_TIMEOUT_MS);

  it("keeps a watch on one follower across that follower's kill and restart, without going back in time", run(async () => {
    const member = await follower();
    const local = new Client({ endpoints: [member.endpoint] });
    const stop = new AbortController();
    const start = Number((await client.kv.put("restart/k", "0")).header!.revision);
    const seen: Event[] = [];
    const watching = (async () => {
      for await (const update of local.watch.watch("restart/k", { startRevision: start, signal: stop.signal })) seen.push(...update.events);
    })();
    const written: number[] = [start];
    const writeSome = async (count: number) => {
      for (let i = 0; i < count; i++) written.push(Number((await client.kv.put("restart/k", String(written.length))).header!.revision));
    };
    await writeSome(30);
    await cluster!.kill(member, "SIGKILL");
    await writeSome(30);
    cluster!.restart(member);
    await writeSome(30);
    const deadline = Date.now() + 30_000;
    while (!seen.some((event) => event.kv!.modRevision >= written.at(-1)!) && Date.now() < deadline) await pause(50);
    stop.abort();
    await watching;
    await local.close();
    expect(seen.map((event) => event.kv!.modRevision)).toEqual(written);
    expect(seen.map((event) => text(event.kv!.value))).toEqual(written.map((_, index) => String(index)));
    // Every member up and following before the next test kills the leader.
    await cluster!.waitForLeader(30_000);
  }), TEST_TIMEOUT_MS);

  it("keeps watches across the leader's death: each sees every committed change exactly once, in order", run(async () => {
    const { leader } = await cluster!.waitForLeader(10_000);
    const others = cluster!.members.filter((member) => member !== leader);
    const start = Number((await client.kv.put("kill/k", "start")).header!.revision);
    // One watch that starts on the leader (it must move), one on a follower; and etcd3's, over every member.
    const onLeader = new Client({ endpoints: [leader.endpoint, ...others.map((member) => member.endpoint)] });
    const onFollower = new Client({ endpoints: [others[0].endpoint] });
    const watchStop = new AbortController();
    const collected = [onLeader, onFollower].map((owner) => {
      const list: Event[] = [];
      const done = (async () => {
        for await (const update of owner.watch.watch("kill/k", { startRevision: start, signal: watchStop.signal })) list.push(...update.events);
      })();
      return { list, done };
    });
    const etcdSeen: string[] = [];
    const etcdWatcher = await cluster!.client({ members: others, retries: true }).watch().key("kill/k").startRevision(String(start)).create();
    etcdWatcher.on("put", (kv: IKeyValue) => etcdSeen.push(`${kv.mod_revision}:${kv.value.toString()}`));

    const writer = new Client({ endpoints: cluster!.endpoints(), commandTimeoutMs: 5000 });
    const acknowledged = new Map<number, string>();
    let killedAt = 0;
    for (let index = 0; acknowledged.size < KILL_TEST_PUTS; index++) {
      if (index === 100) {
        killedAt = index;
        await cluster!.kill(leader, "SIGKILL");
      }
      try {
        const response = await writer.kv.put("kill/k", `v${index}`);
        acknowledged.set(Number(response.header!.revision), `v${index}`);
      } catch (error) {
        // An unknown outcome is fine (the watch tells); anything else must be the failover.
        if (!(error instanceof IndeterminateError)) await pause(50);
      }
      if (index > 5000) throw new Error("the writer made no progress after the kill");
    }
    expect(killedAt).toBeGreaterThan(0);
    expect(leader.running).toBe(false);
    const lastRevision = Math.max(...acknowledged.keys());
    const enough = () => collected.every(({ list }) => list.some((event) => event.kv!.modRevision >= lastRevision)) &&
      etcdSeen.some((entry) => Number(entry.split(":")[0]) >= lastRevision);
    const deadline = Date.now() + 30_000;
    while (!enough() && Date.now() < deadline) await pause(50);
    watchStop.abort();
    await Promise.all(collected.map(({ done }) => done));
    await etcdWatcher.cancel();

    // The history as the survivors hold it, read once more from the start: the reference order.
    const history = eventsOf(await collect(onFollower.watch.watch("kill/k", { startRevision: start }),
      (seen) => eventsOf(seen).some((event) => event.kv!.modRevision >= lastRevision), 20_000));
    const reference = history.filter((event) => event.kv!.modRevision <= lastRevision).map((event) => `${event.kv!.modRevision}:${text(event.kv!.value)}`);
    expect(reference[0]).toBe(`${start}:start`);
    for (const [revision, value] of acknowledged) expect(reference).toContain(`${revision}:${value}`);
    for (const { list } of collected) {
      expect(list.filter((event) => event.kv!.modRevision <= lastRevision).map((event) => `${event.kv!.modRevision}:${text(event.kv!.value)}`)).toEqual(reference);
    }
    expect(etcdSeen.filter((entry) => Number(entry.split(":")[0]) <= lastRevision)).toEqual(reference);
    await Promise.all([onLeader.close(), onFollower.close(), writer.close()]);
    cluster!.restart(leader);
  }), TEST_TIMEOUT_MS);
});
