/**
 * Watch for Cairn's client: an async iterator of updates for a key, a range
 * or a prefix, that survives a lost member.
 *
 *   for await (const update of client.watch.watch("config/", { prefix: true, prevKv: true })) {
 *     for (const event of update.events) console.log(event.type, event.kv?.key);
 *   }
 *
 * Each update carries `revision`: the store revision it brings the watch up
 * to. When the stream breaks (member down, connection lost), the watch opens
 * again on the next endpoint from that revision + 1, so no event is missed or
 * repeated; a member that is behind holds the watch until it catches up
 * instead of going back in time. It ends with WatchCompactedError when the
 * history it needs was compacted, WatchCanceledError when the server refused
 * or canceled it, and quietly when the caller's signal aborts or the reader
 * stops.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { GrpcStatus, WatchFilterType, type Event, type WatchCreateRequest, type WatchResponse } from "../api/mod.js";
import type { Dispatcher } from "./dispatcher.js";
import { ClientClosedError, EtcdClientError, InvalidRequestError } from "./errors.js";
import { rangeEndOf, toBytes, type Bytes, type KeyRangeOptions } from "./kv.js";
import { watchMethods } from "./methods.js";

export interface WatchOptions extends KeyRangeOptions {
  /** The first revision wanted (history replay); absent or 0 for changes from now on. */
  readonly startRevision?: number;
  /** Each event also carries the key as it was before. */
  readonly prevKv?: boolean;
  readonly noPut?: boolean;
  readonly noDelete?: boolean;
  /** Ask the server for periodic empty updates that say how far the watch is. */
  readonly progressNotify?: boolean;
  /** Stops the watch; the iterator then ends. */
  readonly signal?: AbortSignal;
}

export interface WatchUpdate {
  /** The store revision this update brings the watch up to. */
  readonly revision: number;
  /** In revision order; empty for a progress notification. */
  readonly events: readonly Event[];
  /** "host:port" of the member that sent it. */
  readonly endpoint: string;
}

export class WatchCompactedError extends Error {
  override name = "WatchCompactedError";
  constructor(readonly compactRevision: number, readonly wantedRevision: number) {
    super(`etcdserver: mvcc: required revision has been compacted (watch wanted revision ${wantedRevision}, compacted up to ${compactRevision})`);
  }
}

export class WatchCanceledError extends Error {
  override name = "WatchCanceledError";
  constructor(readonly reason: string) {
    super(`watch canceled by the server: ${reason === "" ? "no reason given" : reason}`);
  }
}

/** Waits between attempts to reopen a broken watch: doubling from the first, up to the last. */
export const WATCH_RETRY_BACKOFF_MS_MIN = 50;
export const WATCH_RETRY_BACKOFF_MS_MAX = 1000;

/** Statuses that another endpoint or a later attempt will not change. */
const FINAL_CODES: ReadonlySet<number> = new Set([
  GrpcStatus.invalidArgument, GrpcStatus.unimplemented, GrpcStatus.permissionDenied, GrpcStatus.unauthenticated,
]);

export class WatchClient {
  constructor(private readonly dispatcher: Dispatcher) {}

  /** Watches a key (or a range or prefix, see options). */
  watch(key: Bytes, options: WatchOptions = {}): AsyncIterable<WatchUpdate> {
    const request = createRequest(key, options);
    return { [Symbol.asyncIterator]: () => this.run(request, options.signal) };
  }

  private async *run(template: WatchCreateRequest, signal: AbortSignal | undefined): AsyncGenerator<WatchUpdate> {
    // The next revision the caller has not seen; 0 until the first server answer fixes "now".
    let next = template.startRevision;
    let endpointIndex = 0;
    let failures = 0;
    const channels = this.dispatcher.channels;
    while (!(signal?.aborted ?? false)) {
      if (this.dispatcher.closed) throw new ClientClosedError();
      const channel = channels[endpointIndex % channels.length];
      const stop = new AbortController();
      const call = this.dispatcher.bidiStreamAt(channel, watchMethods.watch, { createRequest: { ...template, startRevision: next } }, {
        signal: signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]),
      });
      try {
        for await (const response of call.responses) {
          const revision = response.header?.revision ?? 0;
          if (response.created) {
            if (response.canceled) throw new WatchCanceledError(response.cancelReason);
            if (next === 0) next = revision + 1;
            failures = 0;
            continue;
          }
          if (response.canceled) {
            if (response.compactRevision > 0) throw new WatchCompactedError(response.compactRevision, next);
            throw new WatchCanceledError(response.cancelReason);
          }
          const update = fresh(response, next, channel.endpoint.address);
          next = Math.max(next, revision + 1, ...update.events.map((event) => (event.kv?.modRevision ?? 0) + 1));
          yield update;
        }
      } catch (error) {
        if (error instanceof WatchCompactedError || error instanceof WatchCanceledError) throw error;
        if (signal?.aborted ?? false) return;
        if (this.dispatcher.closed) throw new ClientClosedError();
        if (error instanceof EtcdClientError && FINAL_CODES.has(error.code)) throw error;
      } finally {
        stop.abort();
      }
      // The stream broke or ended: reopen on the next member from where the caller is.
      endpointIndex++;
      failures++;
      const waitMs = Math.min(WATCH_RETRY_BACKOFF_MS_MAX, WATCH_RETRY_BACKOFF_MS_MIN * 2 ** Math.min(failures - 1, 10));
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        return;
      }
    }
  }
}

/** The response's events the caller has not seen (a server never resends any; this keeps the promise even if one did). */
function fresh(response: WatchResponse, next: number, endpoint: string): WatchUpdate {
  const events = response.events.filter((event) => (event.kv?.modRevision ?? 0) >= next);
  return { revision: response.header?.revision ?? 0, events, endpoint };
}

export function createRequest(key: Bytes, options: WatchOptions): WatchCreateRequest {
  const keyBytes = toBytes(key);
  const startRevision = options.startRevision ?? 0;
  if (!Number.isSafeInteger(startRevision) || startRevision < 0) throw new InvalidRequestError(`startRevision must be a non-negative integer, got ${startRevision}`);
  const filters: number[] = [];
  if (options.noPut) filters.push(WatchFilterType.noPut);
  if (options.noDelete) filters.push(WatchFilterType.noDelete);
  return {
    key: keyBytes, rangeEnd: rangeEndOf(keyBytes, options), startRevision, progressNotify: options.progressNotify ?? false,
    filters, prevKv: options.prevKv ?? false, watchId: 0, fragment: false,
  };
}
