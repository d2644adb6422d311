/**
 * The watch hub: turns applied revisions into the events each watcher is
 * owed, in revision order, with no gap and no duplicate, the events of one
 * revision (one Txn) always together.
 *
 * Every watcher is in one of two states (etcd's synced and unsynced groups):
 *
 * - synced: it has been handed, or holds in its buffer, every matching event
 *   up to the current revision, and `applied()` appends new events to its
 *   buffer as revisions are applied. The buffer is bounded
 *   (`bufferedEventsMax` events per watcher): a revision that does not fit
 *   is not buffered; the watcher turns unsynced instead, remembering the
 *   first revision it has not got (`nextRevision`).
 * - unsynced: a watcher that starts in the past, fell behind, or whose member
 *   installed a snapshot. Once its buffer is drained, `take()` reads the
 *   missing revisions from the MVCC history in bounded steps and turns it
 *   synced again when it reaches the current revision. History below the
 *   compact revision is gone: such a watcher is told so and ends (etcd's
 *   compacted cancel).
 *
 * So a slow consumer costs at most `bufferedEventsMax` events of memory, and
 * the apply path never waits for anyone: it only appends to buffers with
 * room, and an applied event is offered only to the watchers of its exact
 * key and to the range watchers. Pure and synchronous: the consumer (the
 * Watch service) is woken through a callback and pulls with take().
 */
import { assert } from "../lib/assert.js";
import { compareBytes } from "./encoding.js";
import { eventBytes, readHistory } from "./history.js";
import type { KvStore } from "./store.js";
import type { AppliedEntry, KvEvent } from "./types.js";

/** What the hub needs of the MVCC: its store and revisions (Mvcc has them). */
export interface WatchableMvcc {
  readonly store: KvStore;
  currentRevision(): number;
  compactRevision(): number;
}

export interface WatchHubOptions {
  /** Events one watcher may hold in memory; beyond it the watcher catches up from storage. */
  readonly bufferedEventsMax: number;
  /** Key and value bytes one watcher may hold in memory (values can be large, so counting events is not enough). */
  readonly bufferedBytesMax?: number;
  /** Matching events one take() hands out at most (whole revisions: a revision larger than this comes alone). */
  readonly deliveryEventsMax?: number;
  /** Key and value bytes after which one take() stops adding revisions. */
  readonly deliveryBytesMax?: number;
  /** Revision records one history read examines at most, so one slow watcher never holds the event loop long. */
  readonly historyRecordsMax?: number;
}

export const WATCH_DELIVERY_EVENTS_MAX_DEFAULT = 1000;
export const WATCH_BUFFERED_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
export const WATCH_DELIVERY_BYTES_MAX_DEFAULT = 1024 * 1024;
export const WATCH_HISTORY_RECORDS_MAX_DEFAULT = 10_000;

export interface WatchSpec {
  readonly key: Uint8Array;
  /** etcd's rules: empty watches `key` alone, a single 0 byte every key from `key` on, else [key, rangeEnd). */
  readonly rangeEnd: Uint8Array;
  /** The first revision wanted; 0 means from the next revision applied. */
  readonly startRevision: number;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
}

export type WatchDelivery =
  /** `revision` is the store revision the batch brings the watcher up to (the response header's). */
  | { readonly kind: "events"; readonly revision: number; readonly events: readonly KvEvent[] }
  /** The watcher needed history below the compact revision; it is canceled. */
  | { readonly kind: "compacted"; readonly compactRevision: number };

/** etcd's "mvcc: watcher range is empty": range_end at or below key. */
export class EmptyWatcherRangeError extends Error {
  override name = "EmptyWatcherRangeError";
  constructor() {
    super("mvcc: watcher range is empty");
  }
}

interface Batch {
  readonly revision: number;
  readonly events: readonly KvEvent[];
  readonly bytes: number;
}

export class Watcher {
  /**
   * Unsynced: the first revision whose events are neither handed out nor
   * buffered. Synced: the watcher has everything the hub was fed, and this
   * is only a floor (revisions that did not touch its key are not offered to
   * it), which matters for a start revision in the future.
   */
  nextRevision: number;
  synced: boolean;
  canceled = false;
  private readonly buffer: Batch[] = [];
  private bufferedValue = 0;
  private bufferedBytesValue = 0;

  constructor(
    readonly id: number,
    readonly spec: WatchSpec,
    startRevision: number,
    synced: boolean,
    /** Called when the watcher has something to take after having had nothing. */
    readonly onReady: () => void,
  ) {
    this.nextRevision = startRevision;
    this.synced = synced;
  }

  /** Events held in memory for this watcher now (never above the hub's bufferedEventsMax). */
  get bufferedEvents(): number {
    return this.bufferedValue;
  }

  /** Whether take() may have something: buffered events, or history still to read. */
  pending(): boolean {
    return !this.canceled && (this.buffer.length > 0 || !this.synced);
  }

  accepts(event: KvEvent): boolean {
    if (event.type === "put" ? this.spec.noPut : this.spec.noDelete) return false;
    return keyInRange(event.kv.key, this.spec.key, this.spec.rangeEnd);
  }

  /** Appends one revision's events; false (and nothing appended) when they do not fit. */
  offer(batch: Batch, bufferedEventsMax: number, bufferedBytesMax: number): boolean {
    if (this.bufferedValue + batch.events.length > bufferedEventsMax) return false;
    if (this.bufferedBytesValue + batch.bytes > bufferedBytesMax) return false;
    const wasEmpty = this.buffer.length === 0;
    this.buffer.push(batch);
    this.bufferedValue += batch.events.length;
    this.bufferedBytesValue += batch.bytes;
    if (wasEmpty) this.onReady();
    return true;
  }

  /** Up to `eventsMax` buffered events and about `bytesMax` bytes (whole revisions, at least one), oldest first. */
  drain(eventsMax: number, bytesMax: number): Batch | null {
    if (this.buffer.length === 0) return null;
    const events: KvEvent[] = [];
    let revision = 0;
    let bytes = 0;
    while (this.buffer.length > 0 && (events.length === 0 || (events.length + this.buffer[0].events.length <= eventsMax && bytes + this.buffer[0].bytes <= bytesMax))) {
      const batch = this.buffer.shift() as Batch;
      assert(batch.revision > revision, "buffered revisions out of order");
      revision = batch.revision;
      events.push(...batch.events);
      bytes += batch.bytes;
      this.bufferedValue -= batch.events.length;
      this.bufferedBytesValue -= batch.bytes;
    }
    assert(this.bufferedValue >= 0 && this.bufferedBytesValue >= 0, "buffered event count below zero");
    return { revision, events, bytes };
  }

  clear(): void {
    this.buffer.length = 0;
    this.bufferedValue = 0;
    this.bufferedBytesValue = 0;
  }
}

/** A Map key for a byte string (latin1: one character per byte, so distinct keys stay distinct). */
function keyString(key: Uint8Array): string {
  let out = "";
  for (let at = 0; at < key.length; at += 8192) out += String.fromCharCode(...key.subarray(at, at + 8192));
  return out;
}

export function keyInRange(key: Uint8Array, start: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (rangeEnd.length === 0) return compareBytes(key, start) === 0;
  if (compareBytes(key, start) < 0) return false;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return true;
  return compareBytes(key, rangeEnd) < 0;
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly synced = new Set<Watcher>();
  /** Synced watchers of one exact key, by key: an applied event reaches only the watchers of its key and the range watchers. */
  private readonly syncedByKey = new Map<string, Set<Watcher>>();
  private readonly syncedRanges = new Set<Watcher>();
  private nextId = 1;
  private readonly bufferedEventsMax: number;
  private readonly bufferedBytesMax: number;
  private readonly deliveryEventsMax: number;
  private readonly deliveryBytesMax: number;
  private readonly historyRecordsMax: number;
  /** The last revision applied() has seen (or the store's revision when the hub started or a snapshot was restored). */
  private fedRevision: number;
  private bufferedTotal = 0;
  private peak = 0;
  private overflows = 0;

  constructor(private readonly mvcc: WatchableMvcc, options: WatchHubOptions) {
    assert(Number.isInteger(options.bufferedEventsMax) && options.bufferedEventsMax > 0, "bufferedEventsMax must be a positive integer");
    this.bufferedEventsMax = options.bufferedEventsMax;
    this.bufferedBytesMax = options.bufferedBytesMax ?? WATCH_BUFFERED_BYTES_MAX_DEFAULT;
    this.deliveryEventsMax = options.deliveryEventsMax ?? WATCH_DELIVERY_EVENTS_MAX_DEFAULT;
    this.deliveryBytesMax = options.deliveryBytesMax ?? WATCH_DELIVERY_BYTES_MAX_DEFAULT;
    this.historyRecordsMax = options.historyRecordsMax ?? WATCH_HISTORY_RECORDS_MAX_DEFAULT;
    this.fedRevision = mvcc.currentRevision();
  }

  /**
   * Starts a watcher. A start revision at or below the current revision
   * replays history first; 0 (or one in the future) waits for new
   * revisions. A start revision below the compact revision is accepted and
   * answered by a compacted delivery on the first take(), as etcd does.
   */
  watch(spec: WatchSpec, onReady: () => void): Watcher {
    const { rangeEnd, key } = spec;
    if (rangeEnd.length > 0 && !(rangeEnd.length === 1 && rangeEnd[0] === 0) && compareBytes(key, rangeEnd) >= 0) {
      throw new EmptyWatcherRangeError();
    }
    assert(spec.startRevision >= 0, "negative start revision reached the hub");
    const current = this.mvcc.currentRevision();
    const start = spec.startRevision === 0 ? current + 1 : spec.startRevision;
    const watcher = new Watcher(this.nextId++, spec, start, start > current, onReady);
    this.watchers.add(watcher);
    if (watcher.synced) this.addSynced(watcher);
    else onReady();
    return watcher;
  }

  cancel(watcher: Watcher): void {
    if (watcher.canceled) return;
    watcher.canceled = true;
    this.bufferedTotal -= watcher.bufferedEvents;
    watcher.clear();
    this.watchers.delete(watcher);
    this.removeSynced(watcher);
  }

  private addSynced(watcher: Watcher): void {
    this.synced.add(watcher);
    if (watcher.spec.rangeEnd.length > 0) {
      this.syncedRanges.add(watcher);
      return;
    }
    const key = keyString(watcher.spec.key);
    let group = this.syncedByKey.get(key);
    if (group === undefined) this.syncedByKey.set(key, (group = new Set()));
    group.add(watcher);
  }

  private removeSynced(watcher: Watcher): void {
    if (!this.synced.delete(watcher)) return;
    if (watcher.spec.rangeEnd.length > 0) {
      this.syncedRanges.delete(watcher);
      return;
    }
    const key = keyString(watcher.spec.key);
    const group = this.syncedByKey.get(key);
    group?.delete(watcher);
    if (group?.size === 0) this.syncedByKey.delete(key);
  }

  /** Feeds applied entries (KvStateMachine.onApplied). Never waits and never reads the store. */
  applied(entries: readonly AppliedEntry[]): void {
    for (const entry of entries) {
      if (entry.events.length === 0) continue;
      // Revisions with events come one apart: anything else means the hub missed some, and watchers would have a gap.
      assert(entry.revision === this.fedRevision + 1, () => `watch hub fed revision ${entry.revision} after ${this.fedRevision}`);
      this.fedRevision = entry.revision;
      // Collected first: offer() may move a watcher out of the synced sets.
      const candidates = [...this.syncedRanges];
      for (const event of entry.events) {
        const group = this.syncedByKey.get(keyString(event.kv.key));
        if (group !== undefined) candidates.push(...group);
      }
      const offered = new Set<Watcher>();
      for (const watcher of candidates) {
        if (offered.has(watcher)) continue;
        offered.add(watcher);
        this.offer(watcher, entry.revision, entry.events);
      }
    }
  }

  private offer(watcher: Watcher, revision: number, events: readonly KvEvent[]): void {
    if (revision < watcher.nextRevision) return; // a watcher waiting for a future start revision
    // Synced, it has everything before this revision (revisions that did not touch its key were not offered).
    const matching: KvEvent[] = [];
    let bytes = 0;
    for (const event of events) {
      if (!watcher.accepts(event)) continue;
      // The applied events always carry the previous key; a watcher that did not ask for it does not get it.
      const owed = watcher.spec.prevKv || event.prevKv === null ? event : { ...event, prevKv: null };
      matching.push(owed);
      bytes += eventBytes(owed);
    }
    if (matching.length > 0) {
      if (!watcher.offer({ revision, events: matching, bytes }, this.bufferedEventsMax, this.bufferedBytesMax)) {
        // Too far behind: stop buffering; it reads this revision and what follows from storage.
        watcher.nextRevision = revision;
        watcher.synced = false;
        this.removeSynced(watcher);
        this.overflows++;
        watcher.onReady();
        return;
      }
      this.bufferedTotal += matching.length;
      if (watcher.bufferedEvents > this.peak) this.peak = watcher.bufferedEvents;
    }
    watcher.nextRevision = revision + 1;
  }

  /** A snapshot replaced the store: every watcher re-reads from storage what it has not got. */
  restored(): void {
    for (const watcher of [...this.synced]) {
      // It has everything up to the last revision fed; the rest is in the restored store's history.
      watcher.nextRevision = Math.max(watcher.nextRevision, this.fedRevision + 1);
      watcher.synced = false;
      this.removeSynced(watcher);
      watcher.onReady();
    }
    this.fedRevision = this.mvcc.currentRevision();
  }

  /**
   * The next delivery for a watcher: its buffered events first, then (when
   * unsynced) history read from storage. null when there is nothing now; an
   * unsynced watcher may still be pending() after a null (a history read
   * that found no match), and the caller takes again after yielding.
   */
  take(watcher: Watcher): WatchDelivery | null {
    if (watcher.canceled) return null;
    const buffered = watcher.drain(this.deliveryEventsMax, this.deliveryBytesMax);
    if (buffered !== null) {
      this.bufferedTotal -= buffered.events.length;
      return { kind: "events", revision: buffered.revision, events: buffered.events };
    }
    if (watcher.synced) return null;
    const compactRevision = this.mvcc.compactRevision();
    if (watcher.nextRevision < compactRevision) {
      this.cancel(watcher);
      return { kind: "compacted", compactRevision };
    }
    const current = this.mvcc.currentRevision();
    const from = watcher.nextRevision;
    const { revisions, lastRevision } = this.mvcc.store.read((reader) => readHistory(
      reader, from, current, (event) => watcher.accepts(event),
      { eventsMax: this.deliveryEventsMax, recordsMax: this.historyRecordsMax, bytesMax: this.deliveryBytesMax }, watcher.spec.prevKv,
    ));
    watcher.nextRevision = lastRevision + 1;
    if (watcher.nextRevision > current) {
      watcher.synced = true;
      this.addSynced(watcher);
    }
    const events = revisions.flatMap((revision) => revision.events);
    if (events.length === 0) return null;
    return { kind: "events", revision: watcher.synced ? current : lastRevision, events };
  }

  /** The revision a progress notification may announce for this watcher, or null while it is still catching up. */
  progressRevision(watcher: Watcher): number | null {
    if (watcher.canceled || watcher.pending()) return null;
    return this.mvcc.currentRevision();
  }

  /** Events buffered in memory over all watchers. */
  bufferedEvents(): number {
    return this.bufferedTotal;
  }

  /** The most events any one watcher has held in memory at once (never above bufferedEventsMax). */
  bufferedEventsPeak(): number {
    return this.peak;
  }

  /** How many times a watcher's buffer was full and it moved to catching up from storage. */
  overflowCount(): number {
    return this.overflows;
  }

  watcherCount(): number {
    return this.watchers.size;
  }

  unsyncedCount(): number {
    return this.watchers.size - this.synced.size;
  }
}
