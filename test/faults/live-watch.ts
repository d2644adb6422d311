/**
 * The live watcher: one watch over the run's keys, opened at revision 1 when
 * the clients start and held open through the faults, the way an
 * application's watch lives through a cluster's bad days. It reads one
 * member; when that stream breaks (the member killed, paused or cut off, the
 * connection lost, the watch canceled) it opens the watch again on another
 * member from the revision after the last event it saw, as etcd's clients
 * do. At the end its events go through the same checker as the replay
 * (check/watch.ts).
 *
 * It speaks the Watch protocol on a raw stream of Cairn's client channel
 * rather than through `client.watch`, for two reasons: that iterator drops
 * events older than the one it expects next, which would hide a duplicate
 * the server sent from the checker; and it keeps waiting on a member that
 * is paused or partitioned away (the stream stays open, only silent). Here
 * a stream is abandoned when it goes silent (no answer to a progress request
 * for SILENCE_MS_MAX) or falls behind (it has not delivered a revision that
 * was acknowledged to a client LAG_MS_MAX ago).
 *
 * Bounded: the channel buffers at most STREAM_QUEUE_MESSAGES_MAX responses
 * before it pauses the stream, one progress request is outstanding at a
 * time, and the only thing that grows is the list of events it recorded.
 */
import { Channel, parseEndpoint, type Event, type WatchResponse } from "../../src/client/mod.js";
import { watchMethods } from "../../src/client/methods.js";
import { createRequest } from "../../src/client/watch.js";
import type { Prng } from "../../src/lib/prng.js";
import type { WatchEvent } from "./check/watch.js";

/** How often the watcher asks its member how far it is (and judges whether to leave it). */
export const PROGRESS_REQUEST_INTERVAL_MS = 500;
/** A stream with no response of any kind for this long is abandoned: a paused member, or one that cannot send. */
export const SILENCE_MS_MAX = 3000;
/** A stream that has not delivered a revision acknowledged to a client this long ago is abandoned: a member cut off from the leader. */
export const LAG_MS_MAX = 5000;
/** Waits before opening a stream again after streams that delivered no event: doubling from the first, up to the last. */
export const RECONNECT_BACKOFF_MS_MIN = 100;
export const RECONNECT_BACKOFF_MS_MAX = 1000;
const DIAL_TIMEOUT_MS = 1000;
const RECEIVE_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;
const VIOLATIONS_LISTED_MAX = 50;
/** Revision 1 is the empty store every cluster starts with; the first change is revision 2. */
const FIRST_REVISION = 1;
/** etcd's clientv3.InvalidWatchID: answers to a progress request carry it. */
const PROGRESS_WATCH_ID = -1;

/** What one response meant to the watcher. */
export type ResponseMeaning =
  | { readonly kind: "created" }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "compacted"; readonly compactRevision: number }
  | { readonly kind: "canceled"; readonly reason: string }
  | { readonly kind: "events"; readonly count: number }
  | { readonly kind: "progress"; readonly revision: number };

/**
 * What the watcher has seen over all its streams: every event exactly as it
 * arrived, where a new stream must start, and how far the members have said
 * the watch is complete.
 */
export class WatchProgress {
  /** Every event received, in arrival order, duplicates included: de-duplicating here would hide a server's bug from the checker. */
  readonly events: WatchEvent[] = [];
  /** Responses that broke the protocol (an event with no key-value). */
  readonly malformed: string[] = [];
  private highestEventRevision = 0;
  private reached = 0;

  constructor(private readonly startRevision: number = FIRST_REVISION) {}

  /** The start revision of the next stream: one past the newest event seen, so nothing is asked for twice or skipped. */
  get resumeRevision(): number {
    return Math.max(this.startRevision, this.highestEventRevision + 1);
  }

  /**
   * The revision up to which a member has said this watch has every event:
   * the header of an event response, or of a progress answer (sent only when
   * the watch has caught up). A `created` header does not count: it is the
   * member's revision, not how far the watch has delivered.
   */
  get reachedRevision(): number {
    return this.reached;
  }

  take(response: WatchResponse): ResponseMeaning {
    const headerRevision = response.header?.revision ?? 0;
    if (response.created) {
      return response.canceled ? { kind: "refused", reason: response.cancelReason } : { kind: "created" };
    }
    if (response.canceled) {
      return response.compactRevision > 0 ? { kind: "compacted", compactRevision: response.compactRevision } : { kind: "canceled", reason: response.cancelReason };
    }
    if (response.events.length === 0) {
      this.reached = Math.max(this.reached, headerRevision);
      return { kind: "progress", revision: headerRevision };
    }
    for (const event of response.events) this.record(event);
    this.reached = Math.max(this.reached, headerRevision);
    return { kind: "events", count: response.events.length };
  }

  private record(event: Event): void {
    const kv = event.kv;
    if (kv === undefined) {
      if (this.malformed.length < VIOLATIONS_LISTED_MAX) this.malformed.push("an event arrived without its key-value");
      return;
    }
    const key = new TextDecoder().decode(kv.key);
    const revision = kv.modRevision;
    this.events.push(event.type === 0 ? { type: "put", key, value: new TextDecoder().decode(kv.value), revision } : { type: "delete", key, revision });
    this.highestEventRevision = Math.max(this.highestEventRevision, revision);
  }
}

export type StaleVerdict = "silent" | "behind";

/**
 * Judges whether a stream still follows the cluster. It must answer
 * something within `silenceMsMax` (progress requests guarantee an idle but
 * healthy stream does), and whenever it has caught up with the newest
 * revision a client was told about, that revision becomes the next one it
 * must deliver within `lagMsMax`.
 */
export class StreamFreshness {
  private heardAtMs: number;
  private targetRevision: number;
  private targetSetAtMs: number;

  constructor(
    private readonly limits: { readonly silenceMsMax: number; readonly lagMsMax: number },
    openedAtMs: number,
    acknowledgedRevision: number,
  ) {
    this.heardAtMs = openedAtMs;
    this.targetRevision = acknowledgedRevision;
    this.targetSetAtMs = openedAtMs;
  }

  heard(nowMs: number): void {
    this.heardAtMs = Math.max(this.heardAtMs, nowMs);
  }

  /** null while the stream keeps up; otherwise why it should be left. */
  verdict(nowMs: number, reachedRevision: number, acknowledgedRevision: number): StaleVerdict | null {
    if (nowMs - this.heardAtMs > this.limits.silenceMsMax) return "silent";
    if (reachedRevision >= this.targetRevision) {
      this.targetRevision = acknowledgedRevision;
      this.targetSetAtMs = nowMs;
      return null;
    }
    return nowMs - this.targetSetAtMs > this.limits.lagMsMax ? "behind" : null;
  }
}

/** Another member than the one just left, at random; the same one only when there is no other. */
export function otherEndpoint(endpoints: readonly string[], current: string, random: Prng): string {
  const others = endpoints.filter((endpoint) => endpoint !== current);
  return others.length === 0 ? current : random.pick(others);
}

/** No wait after a stream that delivered events; then doubling, capped. */
export function reconnectBackoffMs(streamsWithoutEvents: number): number {
  if (streamsWithoutEvents <= 0) return 0;
  return Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN * 2 ** Math.min(streamsWithoutEvents - 1, 10));
}

/** Why a stream was left, by kind; `unreachable` means no watch was created on it at all. */
export type StreamEnd = StaleVerdict | "unreachable" | "broken" | "ended" | "refused" | "canceled" | "compacted" | "stopped";

export interface StreamRecord {
  readonly endpoint: string;
  readonly fromRevision: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly events: number;
  readonly end: StreamEnd;
  readonly detail: string;
}

export interface StreamLimits {
  readonly progressRequestIntervalMs: number;
  readonly silenceMsMax: number;
  readonly lagMsMax: number;
}

export const STREAM_LIMITS_DEFAULT: StreamLimits = {
  progressRequestIntervalMs: PROGRESS_REQUEST_INTERVAL_MS, silenceMsMax: SILENCE_MS_MAX, lagMsMax: LAG_MS_MAX,
};

export interface LiveWatcherOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly random: Prng;
  readonly now: () => number;
  /** The newest revision acknowledged to any client (what a member that follows the leader must soon deliver). */
  readonly acknowledgedRevision: () => number;
  /** Each stream as it ends (the harness writes it to history.jsonl). */
  readonly recordStream: (stream: StreamRecord) => void;
  readonly log: (line: string) => void;
  /** Shorter limits for tests; STREAM_LIMITS_DEFAULT otherwise. */
  readonly limits?: StreamLimits;
}

export class LiveWatcher {
  readonly progress = new WatchProgress(FIRST_REVISION);
  /** Streams opened after the first; `reconnectsByCause` says why each previous one was left. */
  reconnects = 0;
  readonly reconnectsByCause: Partial<Record<StreamEnd, number>> = {};
  private readonly violationList: string[] = [];
  private readonly lifetime = new AbortController();
  private loop: Promise<void> | undefined;
  private gaveUp = false;
  private readonly limits: StreamLimits;

  constructor(private readonly options: LiveWatcherOptions) {
    this.limits = options.limits ?? STREAM_LIMITS_DEFAULT;
  }

  /** Problems only the live watcher can have (a compaction, never reaching the final revision, a malformed event). */
  get violations(): readonly string[] {
    return [...this.violationList, ...this.progress.malformed];
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Waits until the watch is complete up to `revision`; false when it did not get there within `timeoutMs` or gave up. */
  async waitForRevision(revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = this.options.now() + timeoutMs;
    while (this.progress.reachedRevision < revision) {
      if (this.gaveUp || this.options.now() >= deadline) {
        const why = this.gaveUp ? "it gave up" : `${timeoutMs} ms passed`;
        this.violation(`live watcher never reached revision ${revision} (it got to ${this.progress.reachedRevision}; ${why})`);
        return false;
      }
      await sleep(50);
    }
    return true;
  }

  /** Closes the stream; idempotent. */
  async stop(): Promise<void> {
    this.lifetime.abort();
    await this.loop;
  }

  private violation(message: string): void {
    if (this.violationList.length < VIOLATIONS_LISTED_MAX) this.violationList.push(message);
  }

  private async run(): Promise<void> {
    let endpoint = this.options.random.pick(this.options.endpoints);
    let streamsWithoutEvents = 0;
    while (!this.lifetime.signal.aborted) {
      const fromRevision = this.progress.resumeRevision;
      const eventsBefore = this.progress.events.length;
      const startMs = this.options.now();
      const { end, detail } = await this.follow(endpoint, fromRevision);
      const stream: StreamRecord = { endpoint, fromRevision, startMs, endMs: this.options.now(), events: this.progress.events.length - eventsBefore, end, detail };
      this.options.recordStream(stream);
      if (end === "stopped") return;
      if (end === "compacted") {
        // The harness never compacts; without the history the watch cannot go on.
        this.violation(`live watcher: the watch from revision ${fromRevision} on ${endpoint} was canceled as compacted (${detail})`);
        this.gaveUp = true;
        return;
      }
      // A stream that delivered something is followed at once by the next; streams that bring nothing back off.
      streamsWithoutEvents = stream.events > 0 ? 0 : streamsWithoutEvents + 1;
      const next = otherEndpoint(this.options.endpoints, endpoint, this.options.random);
      if (end !== "unreachable") {
        this.options.log(`live watcher: left ${endpoint} (${end}: ${detail}) after ${stream.events} events; resuming from revision ${this.progress.resumeRevision} on ${next}`);
      }
      await sleep(reconnectBackoffMs(streamsWithoutEvents), this.lifetime.signal);
      if (this.lifetime.signal.aborted) return;
      this.reconnects++;
      this.reconnectsByCause[end] = (this.reconnectsByCause[end] ?? 0) + 1;
      endpoint = next;
    }
  }

  /** Follows one stream until it breaks, goes stale or the watcher stops. */
  private async follow(endpoint: string, fromRevision: number): Promise<{ end: StreamEnd; detail: string }> {
    const channel = new Channel(parseEndpoint(endpoint), { dialTimeoutMs: DIAL_TIMEOUT_MS, receiveMessageBytesMax: RECEIVE_MESSAGE_BYTES_MAX });
    const leave = new AbortController();
    const signal = AbortSignal.any([this.lifetime.signal, leave.signal]);
    const freshness = new StreamFreshness(this.limits, this.options.now(), this.options.acknowledgedRevision());
    let created = false;
    let progressOutstanding = false;
    let stale: { end: StaleVerdict; detail: string } | undefined;
    const call = channel.bidiStream(watchMethods.watch, { createRequest: createRequest(this.options.prefix, { prefix: true, startRevision: fromRevision }) }, signal);
    const ticker = setInterval(() => {
      const verdict = freshness.verdict(this.options.now(), this.progress.reachedRevision, this.options.acknowledgedRevision());
      if (verdict !== null) {
        stale = {
          end: verdict,
          detail: verdict === "silent" ? `no answer for ${this.limits.silenceMsMax} ms` : `revision ${this.progress.reachedRevision} delivered, ${this.options.acknowledgedRevision()} acknowledged`,
        };
        leave.abort();
        channel.close();
        return;
      }
      if (created && !progressOutstanding) progressOutstanding = call.send({ progressRequest: {} });
    }, this.limits.progressRequestIntervalMs);
    try {
      for await (const response of call.responses) {
        freshness.heard(this.options.now());
        const meaning = this.progress.take(response);
        if (meaning.kind === "created") created = true;
        else if (meaning.kind === "progress" && response.watchId === PROGRESS_WATCH_ID) progressOutstanding = false;
        else if (meaning.kind === "refused" || meaning.kind === "canceled") return { end: meaning.kind, detail: meaning.reason };
        else if (meaning.kind === "compacted") return { end: "compacted", detail: `compacted up to ${meaning.compactRevision}` };
      }
      return stale ?? (this.lifetime.signal.aborted ? { end: "stopped", detail: "" } : { end: "ended", detail: "the server ended the stream" });
    } catch (error) {
      if (this.lifetime.signal.aborted) return { end: "stopped", detail: "" };
      if (stale !== undefined) return stale;
      return { end: created ? "broken" : "unreachable", detail: error instanceof Error ? error.message : String(error) };
    } finally {
      clearInterval(ticker);
      leave.abort();
      channel.close();
    }
  }
}

function sleep(milliseconds: number, signal?: AbortSignal): Promise<void> {
  if (milliseconds <= 0 || (signal?.aborted ?? false)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, milliseconds);
    signal?.addEventListener("abort", done, { once: true });
  });
}
