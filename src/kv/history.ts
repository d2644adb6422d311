/**
 * Reading past events back out of the revision table: what a watcher that
 * starts in the past, or fell behind, is sent. The revision table holds every
 * write in (main, sub) order, so the events of revisions [from, to] are one
 * ordered walk; a Txn's writes share a main revision and come out together.
 */
import { assert } from "../lib/assert.js";
import { decodeRevisionKey, decodeRevisionRecord, escapeKey, revisionKey } from "./encoding.js";
import { newestAt, toKeyValue } from "./index-scan.js";
import { KvTable, type KvReader } from "./store.js";
import type { KeyValue, KvEvent } from "./types.js";

/** The events of one main revision, in sub-revision order. */
export interface RevisionEvents {
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

const EMPTY = new Uint8Array(0);

export interface HistoryBudget {
  /** Matching events after which the walk stops (at the end of that revision). */
  readonly eventsMax: number;
  /** Revision records examined, matching or not, after which the walk stops (at the end of that revision). */
  readonly recordsMax: number;
  /** Key, value and previous-value bytes of matching events after which the walk stops (at the end of that revision). */
  readonly bytesMax: number;
}

/** The bytes an event holds beyond its fixed fields: what a bound on buffered or delivered events must count. */
export function eventBytes(event: KvEvent): number {
  return event.kv.key.length + event.kv.value.length + (event.prevKv === null ? 0 : event.prevKv.key.length + event.prevKv.value.length);
}

/**
 * Events of revisions [from, to] that `accepts`, grouped by revision. Stops
 * at the end of the revision where either budget ran out (a revision is never
 * split: a Txn's events stay together) and reports the last revision it
 * covered, so the caller resumes after it. `prevKv` reads each key as it
 * stood just before the event (etcd does the same for prev_kv on history).
 */
export function readHistory(
  reader: KvReader, from: number, to: number, accepts: (event: KvEvent) => boolean, budget: HistoryBudget, prevKv: boolean,
): { revisions: RevisionEvents[]; lastRevision: number } {
  assert(from > 0 && budget.eventsMax > 0 && budget.recordsMax > 0 && budget.bytesMax > 0, "readHistory needs a positive start and budget");
  const revisions: RevisionEvents[] = [];
  if (to < from) return { revisions, lastRevision: to };
  let current: { revision: number; events: KvEvent[] } | null = null;
  let count = 0;
  let examined = 0;
  let bytes = 0;
  let lastRevision = to;
  for (const entry of reader.range(KvTable.Revisions, { start: revisionKey(from, 0), end: revisionKey(to + 1, 0) })) {
    const { main } = decodeRevisionKey(entry.key);
    if (current !== null && main !== current.revision) {
      if (current.events.length > 0) revisions.push(current);
      if (count >= budget.eventsMax || examined >= budget.recordsMax || bytes >= budget.bytesMax) {
        lastRevision = current.revision;
        current = null;
        break;
      }
      current = null;
    }
    current ??= { revision: main, events: [] };
    examined++;
    const event = eventOf(reader, main, decodeRevisionRecord(entry.value), prevKv);
    if (accepts(event)) {
      current.events.push(event);
      count++;
      bytes += eventBytes(event);
    }
  }
  if (current !== null && current.events.length > 0) revisions.push(current);
  return { revisions, lastRevision };
}

function eventOf(reader: KvReader, main: number, record: ReturnType<typeof decodeRevisionRecord>, withPrevKv: boolean): KvEvent {
  const created = !record.tombstone && record.createRevision === main;
  let prevKv: KeyValue | null = null;
  if (withPrevKv && !created) {
    const previous = newestAt(reader, escapeKey(record.key), main - 1);
    if (previous !== null && !previous.index.tombstone) prevKv = toKeyValue(reader, previous, true);
  }
  if (record.tombstone) {
    return { type: "delete", kv: { key: record.key, value: EMPTY, createRevision: 0, modRevision: main, version: 0, lease: 0n }, prevKv };
  }
  const kv: KeyValue = { key: record.key, value: record.value, createRevision: record.createRevision, modRevision: main, version: record.version, lease: record.lease };
  return { type: "put", kv, prevKv };
}
