/**
 * Range with etcd 3.4/3.5 semantics, built so that a server can stream the
 * answer: `count`, `more` and the byte size come from the key index alone
 * (no values read), and key-ordered answers are produced in chunks that
 * resume after the last key, each chunk in its own short read.
 *
 * etcd's rules reproduced here: `count` is every key in the range at the
 * revision, before the min/max filters and the limit; a sort target other
 * than KEY with order NONE sorts ascending; `more` is true when the filtered,
 * sorted answer had more than `limit` keys; count_only returns no kvs and
 * more = false; keys_only returns empty values.
 */
import { SortOrder, SortTarget, type RangeRequest } from "./command.js";
import { compareBytes } from "./encoding.js";
import { boundsAfter, indexBounds, readValue, scanLive, toKeyValue, type IndexHit } from "./index-scan.js";
import type { KvReader } from "./store.js";
import type { KeyValue } from "./types.js";

export interface RangeSummary {
  /** etcd's count: keys in the range at the revision, before filters and limit. */
  readonly count: number;
  /** Keys the answer will carry. */
  readonly kvCount: number;
  readonly more: boolean;
  /** Key and value bytes the answer will carry (without protobuf framing). */
  readonly bytes: number;
}

/** How the answer is ordered: by key (streamable) or by another target (selected up front). */
export function keyOrdered(request: RangeRequest): boolean {
  return request.sortTarget === SortTarget.Key;
}

export function scansBackwards(request: RangeRequest): boolean {
  return request.sortTarget === SortTarget.Key && request.sortOrder === SortOrder.Descend;
}

export function passesFilters(request: RangeRequest, hit: IndexHit): boolean {
  if (request.minModRevision !== 0 && hit.main < request.minModRevision) return false;
  if (request.maxModRevision !== 0 && hit.main > request.maxModRevision) return false;
  if (request.minCreateRevision !== 0 && hit.index.createRevision < request.minCreateRevision) return false;
  if (request.maxCreateRevision !== 0 && hit.index.createRevision > request.maxCreateRevision) return false;
  return true;
}

interface Candidate {
  readonly hit: IndexHit;
  /** Only read when sorting by value. */
  readonly value: Uint8Array | null;
}

function sortComparator(request: RangeRequest): (a: Candidate, b: Candidate) => number {
  const direction = request.sortOrder === SortOrder.Descend ? -1 : 1;
  const byTarget = (a: Candidate, b: Candidate): number => {
    switch (request.sortTarget) {
      case SortTarget.Version: return a.hit.index.version - b.hit.index.version;
      case SortTarget.Create: return a.hit.index.createRevision - b.hit.index.createRevision;
      case SortTarget.Mod: return a.hit.main - b.hit.main;
      case SortTarget.Value: return compareBytes(a.value as Uint8Array, b.value as Uint8Array);
      default: return compareBytes(a.hit.prefix, b.hit.prefix);
    }
  };
  // Array.prototype.sort is stable: ties keep ascending key order.
  return (a, b) => direction * byTarget(a, b);
}

/**
 * The hits of a non-key-ordered answer, sorted, at most `limit` of them
 * (kept as a bounded buffer trimmed as it fills, so memory follows the limit,
 * not the range). Also returns the range's count and the filtered count.
 */
export function selectSorted(reader: KvReader, request: RangeRequest, revision: number): { hits: IndexHit[]; count: number; filtered: number } {
  const bounds = indexBounds(request.key, request.rangeEnd);
  if (bounds === null) return { hits: [], count: 0, filtered: 0 };
  const comparator = sortComparator(request);
  const limit = request.limit;
  let buffer: Candidate[] = [];
  let count = 0;
  let filtered = 0;
  for (const hit of scanLive(reader, bounds, revision, false)) {
    count++;
    if (request.countOnly || !passesFilters(request, hit)) continue;
    filtered++;
    buffer.push({ hit, value: request.sortTarget === SortTarget.Value ? readValue(reader, hit) : null });
    if (limit > 0 && buffer.length >= limit * 2 + 64) buffer = buffer.sort(comparator).slice(0, limit);
  }
  buffer.sort(comparator);
  if (limit > 0) buffer = buffer.slice(0, limit);
  return { hits: buffer.map((candidate) => candidate.hit), count, filtered };
}

/** Count, more and size of an answer, from the key index only (plus values when sorting by value). */
export function summarize(reader: KvReader, request: RangeRequest, revision: number): RangeSummary {
  if (!keyOrdered(request)) {
    const { hits, count, filtered } = selectSorted(reader, request, revision);
    if (request.countOnly) return { count, kvCount: 0, more: false, bytes: 0 };
    return { count, kvCount: hits.length, more: request.limit > 0 && filtered > request.limit, bytes: bytesOf(request, hits) };
  }
  const bounds = indexBounds(request.key, request.rangeEnd);
  if (bounds === null) return { count: 0, kvCount: 0, more: false, bytes: 0 };
  let count = 0;
  let kvCount = 0;
  let more = false;
  let bytes = 0;
  for (const hit of scanLive(reader, bounds, revision, scansBackwards(request))) {
    count++;
    if (request.countOnly || !passesFilters(request, hit)) continue;
    if (request.limit > 0 && kvCount >= request.limit) {
      more = true;
      continue;
    }
    kvCount++;
    bytes += hitBytes(request, hit);
  }
  return { count, kvCount, more, bytes };
}

function hitBytes(request: RangeRequest, hit: IndexHit): number {
  // The escaped prefix overstates the key by its escapes and terminator; count the real key length.
  let zeros = 0;
  for (let i = 0; i < hit.prefix.length - 2; i++) if (hit.prefix[i] === 0) zeros++;
  const keyLength = hit.prefix.length - 2 - zeros / 2;
  return keyLength + (request.keysOnly ? 0 : hit.index.valueLength);
}

function bytesOf(request: RangeRequest, hits: readonly IndexHit[]): number {
  let total = 0;
  for (const hit of hits) total += hitBytes(request, hit);
  return total;
}

/**
 * Resumable production of a key-ordered answer. `nextChunk` reads at most
 * `kvsMax` kvs (and stops after passing `bytesMax`) and remembers where it
 * stopped, so each chunk can run in its own read.
 */
export class KeyOrderedChunker {
  private resumeAfter: Uint8Array | null = null;
  private returned = 0;
  private done = false;

  constructor(private readonly request: RangeRequest, private readonly revision: number) {
    if (request.countOnly || indexBounds(request.key, request.rangeEnd) === null) this.done = true;
  }

  nextChunk(reader: KvReader, kvsMax: number, bytesMax: number): KeyValue[] | null {
    if (this.done) return null;
    const request = this.request;
    const reverse = scansBackwards(request);
    const full = indexBounds(request.key, request.rangeEnd) as { start: Uint8Array; end?: Uint8Array };
    const bounds = this.resumeAfter === null ? full : boundsAfter(full, this.resumeAfter, reverse);
    const chunk: KeyValue[] = [];
    let bytes = 0;
    let exhausted = true;
    for (const hit of scanLive(reader, bounds, this.revision, reverse)) {
      if (request.limit > 0 && this.returned >= request.limit) break;
      if (chunk.length >= kvsMax || bytes >= bytesMax) {
        exhausted = false;
        break;
      }
      this.resumeAfter = hit.prefix;
      if (!passesFilters(request, hit)) continue;
      const kv = toKeyValue(reader, hit, !request.keysOnly);
      chunk.push(kv);
      bytes += kv.key.length + kv.value.length;
      this.returned++;
    }
    if (exhausted) this.done = true;
    return chunk.length === 0 && this.done ? null : chunk;
  }
}

/** The whole answer in one read (for Txn ranges and small requests). */
export function rangeAll(reader: KvReader, request: RangeRequest, readRevision: number, headerRevision: number): { kvs: KeyValue[]; more: boolean; count: number; revision: number } {
  if (!keyOrdered(request)) {
    const { hits, count, filtered } = selectSorted(reader, request, readRevision);
    if (request.countOnly) return { kvs: [], more: false, count, revision: headerRevision };
    return {
      kvs: hits.map((hit) => toKeyValue(reader, hit, !request.keysOnly)),
      more: request.limit > 0 && filtered > request.limit, count, revision: headerRevision,
    };
  }
  const summary = summarize(reader, request, readRevision);
  const chunker = new KeyOrderedChunker(request, readRevision);
  const kvs: KeyValue[] = [];
  for (;;) {
    const chunk = chunker.nextChunk(reader, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY);
    if (chunk === null) break;
    kvs.push(...chunk);
  }
  return { kvs, more: summary.more, count: summary.count, revision: headerRevision };
}
