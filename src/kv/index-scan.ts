/**
 * Walking the key index: which keys exist at a revision, in byte-wise key
 * order, forwards or backwards. Every answer about "the key at revision R"
 * comes from here.
 */
import {
  bytesEqual, compareBytes, decodeIndexValue, decodeKeyIndexKey, decodeRevisionRecord, escapeKey, keyIndexBoundsOf,
  revisionKey, userKeyOfPrefix, type IndexValue,
} from "./encoding.js";
import { assert } from "../lib/assert.js";
import { KvTable, type KvRangeOptions, type KvReader } from "./store.js";
import type { KeyValue } from "./types.js";

/** One key as it stood at the revision scanned: its newest key-index entry at or below that revision. */
export interface IndexHit {
  /** Escaped key ‖ terminator; identifies the key and orders hits. */
  readonly prefix: Uint8Array;
  readonly main: number;
  readonly sub: number;
  readonly index: IndexValue;
}

export function hitKey(hit: IndexHit): Uint8Array {
  return userKeyOfPrefix(hit.prefix);
}

/** Key-index bounds of a (key, rangeEnd) request, or null when the range is empty. */
export function indexBounds(key: Uint8Array, rangeEnd: Uint8Array): { start: Uint8Array; end?: Uint8Array } | null {
  if (rangeEnd.length === 0) return keyIndexBoundsOf(escapeKey(key));
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start: escapeKey(key) };
  if (compareBytes(rangeEnd, key) <= 0) return null;
  return { start: escapeKey(key), end: escapeKey(rangeEnd) };
}

/** The bounds left after `prefix` when walking in `reverse` or not (used to resume a stream). */
export function boundsAfter(bounds: { start: Uint8Array; end?: Uint8Array }, prefix: Uint8Array, reverse: boolean): { start: Uint8Array; end?: Uint8Array } {
  if (reverse) return { start: bounds.start, end: prefix.subarray(0, prefix.length - 2) };
  const next = prefix.slice();
  next[next.length - 1] = 0x02;
  return { start: next, end: bounds.end };
}

/**
 * Keys that exist (not deleted) at `revision` within the bounds. Entries of
 * one key arrive newest first going forwards and oldest first backwards;
 * tombstones and entries above `revision` are skipped.
 */
export function* scanLive(reader: KvReader, bounds: { start: Uint8Array; end?: Uint8Array }, revision: number, reverse: boolean): Generator<IndexHit> {
  const options: KvRangeOptions = { start: bounds.start, end: bounds.end, reverse };
  if (!reverse) {
    let resolved: Uint8Array | null = null;
    for (const entry of reader.range(KvTable.KeyIndex, options)) {
      const parts = decodeKeyIndexKey(entry.key);
      if (resolved !== null && bytesEqual(parts.prefix, resolved)) continue;
      if (parts.main > revision) continue;
      resolved = parts.prefix.slice();
      const index = decodeIndexValue(entry.value);
      if (!index.tombstone) yield { prefix: resolved, main: parts.main, sub: parts.sub, index };
    }
    return;
  }
  let candidate: IndexHit | null = null;
  let candidatePrefix: Uint8Array | null = null;
  for (const entry of reader.range(KvTable.KeyIndex, options)) {
    const parts = decodeKeyIndexKey(entry.key);
    if (candidatePrefix === null || !bytesEqual(parts.prefix, candidatePrefix)) {
      if (candidate !== null && !candidate.index.tombstone) yield candidate;
      candidate = null;
      candidatePrefix = parts.prefix.slice();
    }
    // Backwards, a key's entries come oldest first: the last one at or below the revision wins.
    if (parts.main <= revision) candidate = { prefix: candidatePrefix, main: parts.main, sub: parts.sub, index: decodeIndexValue(entry.value) };
  }
  if (candidate !== null && !candidate.index.tombstone) yield candidate;
}

/** The newest key-index entry of one key at or below `revision`, tombstone or not; null when the key never existed there. */
export function newestAt(reader: KvReader, escapedKey: Uint8Array, revision: number): IndexHit | null {
  const bounds = keyIndexBoundsOf(escapedKey);
  for (const entry of reader.range(KvTable.KeyIndex, bounds)) {
    const parts = decodeKeyIndexKey(entry.key);
    if (parts.main > revision) continue;
    return { prefix: parts.prefix.slice(), main: parts.main, sub: parts.sub, index: decodeIndexValue(entry.value) };
  }
  return null;
}

export function readValue(reader: KvReader, hit: IndexHit): Uint8Array {
  const bytes = reader.get(KvTable.Revisions, revisionKey(hit.main, hit.sub));
  assert(bytes !== undefined, () => `revision ${hit.main}.${hit.sub} is in the key index but not in the revision table`);
  const record = decodeRevisionRecord(bytes);
  assert(!record.tombstone && record.value.length === hit.index.valueLength, "revision record disagrees with the key index");
  return record.value;
}

export function toKeyValue(reader: KvReader, hit: IndexHit, withValue: boolean): KeyValue {
  return {
    key: hitKey(hit),
    value: withValue ? readValue(reader, hit) : new Uint8Array(0),
    createRevision: hit.index.createRevision,
    modRevision: hit.main,
    version: hit.index.version,
    lease: hit.index.lease,
  };
}
