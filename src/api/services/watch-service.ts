/**
 * etcd's Watch service on the node's watch hub (kv/watch-hub.ts). One call
 * is one bidirectional stream carrying many watches:
 *
 * - create: answered with `created` and the watch id (the client's own id
 *   when it gave one, else the next free id from 0, as etcd's watch stream
 *   assigns them); refusals are `created` + `canceled` with watch id -1 and
 *   etcd's reason text.
 * - events: per watch, whole revisions in revision order; the header
 *   revision is the store revision the response brings the watch up to.
 * - cancel: `canceled` for a watch of this stream; an unknown id is ignored
 *   (etcd does the same).
 * - compaction: a watch that needs history below the compact revision gets
 *   `compact_revision` and `canceled`, and ends.
 * - progress: with progress_notify, a watch that got no event for a whole
 *   interval gets an empty response whose header revision says how far it
 *   is; a progress request is answered with watch id -1 once every watch of
 *   the stream has caught up.
 *
 * Backpressure: one send at a time, `await`ed. While the client does not
 * read, nothing more is taken from the hub, so each watch holds at most the
 * hub's bounded buffer and then catches up from storage. Watches with
 * something to send take turns, so one replaying a long history does not
 * hold back the others on its stream.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { EmptyWatcherRangeError, type KvEvent, type KeyValue as KvKeyValue, type WatchHub, type Watcher } from "../../kv/mod.js";
import type { NodeIdentity } from "../backend.js";
import type { CallContext, ResponseSink } from "../grpc/server.js";
import type { WatchHandler } from "../handlers.js";
import { toWireKeyValue } from "../kv-mapping.js";
import {
  EventType, WatchFilterType, type Event, type WatchCreateRequest, type WatchRequest, type WatchResponse,
} from "../protobuf/messages.js";
import { headerOf, refuseOnLearner } from "./common.js";

export interface WatchBackend extends NodeIdentity {
  readonly hub: WatchHub;
  currentRevision(): number;
}

export interface WatchServiceOptions {
  /** How often a progress_notify watch with no events hears how far it is (etcd's default: 10 minutes). */
  progressNotifyIntervalMs?: number;
  /** Watches one stream may hold at once; more are refused. */
  watchesPerStreamMax?: number;
}

export const PROGRESS_NOTIFY_INTERVAL_MS_DEFAULT = 10 * 60 * 1000;
export const WATCHES_PER_STREAM_MAX_DEFAULT = 10_000;
/** etcd's clientv3.InvalidWatchID: refusals and stream-wide progress answers carry it. */
export const INVALID_WATCH_ID = -1;
/** Responses sent in a row before the stream lets the event loop run other work. */
const SENDS_PER_TURN_MAX = 32;
/** History reads that found nothing to send before the stream lets the event loop run other work. */
const EMPTY_READS_PER_TURN_MAX = 8;

const COMPACTED_REASON = "etcdserver: mvcc: required revision has been compacted";
const DUPLICATE_ID_REASON = "mvcc: duplicate watch ID provided on the WatchStream";

export class WatchService implements WatchHandler {
  private readonly progressNotifyIntervalMs: number;
  private readonly watchesPerStreamMax: number;

  constructor(private readonly backend: WatchBackend, options: WatchServiceOptions = {}) {
    this.progressNotifyIntervalMs = options.progressNotifyIntervalMs ?? PROGRESS_NOTIFY_INTERVAL_MS_DEFAULT;
    this.watchesPerStreamMax = options.watchesPerStreamMax ?? WATCHES_PER_STREAM_MAX_DEFAULT;
  }

  async watch(requests: AsyncIterable<WatchRequest>, responses: ResponseSink<WatchResponse>, context: CallContext): Promise<void> {
    // etcd refuses every stream on a learner.
    refuseOnLearner(this.backend);
    const stream = new WatchStream(this.backend, responses, context.signal, this.watchesPerStreamMax);
    await stream.run(requests, this.progressNotifyIntervalMs);
  }
}

interface StreamWatch {
  readonly id: number;
  readonly watcher: Watcher;
  readonly progressNotify: boolean;
  /** An event response went out since the last progress tick (etcd then skips that tick's notification). */
  sentSinceTick: boolean;
}

class WatchStream {
  private readonly watches = new Map<number, StreamWatch>();
  private readonly control: WatchResponse[] = [];
  /** Watch ids with something to take, in turn order; `queued` mirrors it for O(1) membership. */
  private readonly ready: number[] = [];
  private readonly queued = new Set<number>();
  private nextAutoId = 0;
  private progressAllRequested = false;
  private wakeUp: (() => void) | null = null;
  private receiveFailure: unknown = null;
  private done = false;

  constructor(
    private readonly backend: WatchBackend,
    private readonly responses: ResponseSink<WatchResponse>,
    private readonly signal: AbortSignal,
    private readonly watchesMax: number,
  ) {}

  async run(requests: AsyncIterable<WatchRequest>, progressIntervalMs: number): Promise<void> {
    const onAbort = () => this.wake();
    this.signal.addEventListener("abort", onAbort);
    const ticker = setInterval(() => this.progressTick(), progressIntervalMs);
    ticker.unref();
    // The request side may end (a client half-close) while the watches go on, as in etcd.
    this.receive(requests).catch((error: unknown) => {
      this.receiveFailure = error;
      this.wake();
    });
    try {
      await this.sendLoop();
      if (this.receiveFailure !== null) throw this.receiveFailure;
    } finally {
      this.done = true;
      clearInterval(ticker);
      this.signal.removeEventListener("abort", onAbort);
      for (const watch of this.watches.values()) this.backend.hub.cancel(watch.watcher);
      this.watches.clear();
    }
  }

  private wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = null;
    wakeUp?.();
  }

  private async receive(requests: AsyncIterable<WatchRequest>): Promise<void> {
    for await (const request of requests) {
      if (this.done || this.signal.aborted) return;
      if ("createRequest" in request) this.create(request.createRequest);
      else if ("cancelRequest" in request) this.cancel(request.cancelRequest.watchId);
      else if ("progressRequest" in request) this.progressAllRequested = true;
      else continue; // an empty request: etcd skips it rather than end the stream
      this.wake();
    }
  }

  private header() {
    return headerOf(this.backend, this.backend.currentRevision());
  }

  private refuse(reason: string): void {
    this.control.push(response({ header: this.header(), watchId: INVALID_WATCH_ID, created: true, canceled: true, cancelReason: reason }));
  }

  private create(request: WatchCreateRequest): void {
    if (request.startRevision < 0) return this.refuse(COMPACTED_REASON);
    if (request.watchId !== 0 && this.watches.has(request.watchId)) return this.refuse(DUPLICATE_ID_REASON);
    if (this.watches.size >= this.watchesMax) return this.refuse(`cairn: too many watches on one stream (limit ${this.watchesMax})`);
    const id = request.watchId !== 0 ? request.watchId : this.autoId();
    let watcher: Watcher;
    try {
      watcher = this.backend.hub.watch({
        // etcd: an empty key is the smallest key, \0.
        key: request.key.length === 0 ? new Uint8Array([0]) : request.key,
        rangeEnd: request.rangeEnd,
        startRevision: request.startRevision,
        noPut: request.filters.includes(WatchFilterType.noPut),
        noDelete: request.filters.includes(WatchFilterType.noDelete),
        prevKv: request.prevKv,
      }, () => this.markReady(id));
    } catch (error) {
      if (error instanceof EmptyWatcherRangeError) return this.refuse(error.message);
      throw error;
    }
    // The created answer goes out before any event of the watch: control responses go first.
    this.control.push(response({ header: this.header(), watchId: id, created: true }));
    this.watches.set(id, { id, watcher, progressNotify: request.progressNotify, sentSinceTick: false });
  }

  private autoId(): number {
    while (this.watches.has(this.nextAutoId)) this.nextAutoId++;
    return this.nextAutoId++;
  }

  private cancel(id: number): void {
    const watch = this.watches.get(id);
    if (watch === undefined) return;
    this.backend.hub.cancel(watch.watcher);
    this.watches.delete(id);
    this.control.push(response({ header: this.header(), watchId: id, canceled: true }));
  }

  private markReady(id: number): void {
    if (this.queued.has(id)) return;
    this.queued.add(id);
    this.ready.push(id);
    this.wake();
  }

  private progressTick(): void {
    for (const watch of this.watches.values()) {
      if (!watch.progressNotify) continue;
      if (!watch.sentSinceTick) {
        const revision = this.backend.hub.progressRevision(watch.watcher);
        if (revision !== null) this.control.push(response({ header: headerOf(this.backend, revision), watchId: watch.id }));
      }
      watch.sentSinceTick = false;
    }
    this.wake();
  }

  private async sendLoop(): Promise<void> {
    let sentThisTurn = 0;
    let emptyReads = 0;
    while (!this.signal.aborted && this.receiveFailure === null) {
      const next = this.next();
      if (next === "empty-read") {
        if (++emptyReads >= EMPTY_READS_PER_TURN_MAX) {
          emptyReads = 0;
          await nextTurn();
        }
        continue;
      }
      if (next !== null) {
        try {
          await this.responses.send(next);
        } catch {
          return; // the call is over (client gone, deadline, server closing)
        }
        if (++sentThisTurn >= SENDS_PER_TURN_MAX) {
          sentThisTurn = 0;
          await nextTurn();
        }
        continue;
      }
      sentThisTurn = 0;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
      });
    }
  }

  /** The next response to send, "empty-read" after a history read with nothing to send, or null when idle. */
  private next(): WatchResponse | "empty-read" | null {
    const control = this.control.shift();
    if (control !== undefined) return control;
    while (this.ready.length > 0) {
      const id = this.ready.shift() as number;
      this.queued.delete(id);
      const watch = this.watches.get(id);
      if (watch === undefined) continue;
      const delivery = this.backend.hub.take(watch.watcher);
      // Still more to take: back of the line, so every watch of the stream gets its turn.
      if (watch.watcher.pending()) this.markReady(id);
      if (delivery === null) {
        if (watch.watcher.pending()) return "empty-read";
        continue;
      }
      if (delivery.kind === "compacted") {
        this.watches.delete(id);
        return response({ header: this.header(), watchId: id, canceled: true, compactRevision: delivery.compactRevision });
      }
      watch.sentSinceTick = true;
      return response({ header: headerOf(this.backend, delivery.revision), watchId: id, events: delivery.events.map(toWireEvent) });
    }
    if (this.progressAllRequested && [...this.watches.values()].every((watch) => !watch.watcher.pending())) {
      this.progressAllRequested = false;
      return response({ header: this.header(), watchId: INVALID_WATCH_ID });
    }
    return null;
  }
}

function response(fields: Partial<WatchResponse>): WatchResponse {
  return { watchId: 0, created: false, canceled: false, compactRevision: 0, cancelReason: "", fragment: false, events: [], ...fields };
}

function toWireEvent(event: KvEvent): Event {
  const wire: Event = { type: event.type === "put" ? EventType.put : EventType.delete, kv: toWireKeyValue(event.kv) };
  if (event.prevKv !== null) wire.prevKv = toWireKeyValue(event.prevKv as KvKeyValue);
  return wire;
}
