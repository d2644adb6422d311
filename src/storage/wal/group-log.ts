/**
 * What the WAL knows about one Raft group: its hard state, its latest
 * snapshot marker, and for every entry still in its log the term and where
 * the entry lives on disk, plus a cache of the recent tail. The same rules
 * run when an append is accepted and when recovery replays a record, so a WAL
 * can never write what it would refuse to read back.
 */
import { assert } from "../../lib/assert.js";
import type { GroupId } from "../../lib/ids.js";
import type { Entry, EntryType, HardState, SnapshotMetadata } from "../../raft/types.js";
import { Column } from "./column.js";
import type { Checkpoint } from "./record-codec.js";

/** Bytes a cached entry costs beyond its data (object, array slot, bookkeeping). */
export const CACHE_ENTRY_OVERHEAD_BYTES = 64;
/** Dead slots at the front of the per-entry arrays tolerated before they are reclaimed. */
const DEAD_SLOTS_MAX = 1024;

/**
 * Where an entry lives: `segment` > 0 is a segment sequence number; < 0 is
 * minus the number of the batch still being written; 0 (recovery only) means
 * the entry was known from a checkpoint and its bytes were in a deleted
 * segment.
 */
export interface EntryLocation {
  readonly segment: number;
  readonly recordOffset: number;
  readonly entryOffset: number;
}

export interface GroupSummary {
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMetadata | null;
  readonly firstIndex: number;
  readonly lastIndex: number;
}

export class GroupLog {
  hardState: HardState | null = null;
  snapshot: SnapshotMetadata | null = null;
  firstIndex = 1;
  lastIndex = 0;
  /** The WAL's bookkeeping: the last batch that took entries of this group, and this group's slot in it. */
  touchedBatch = 0;
  touchedSlot = 0;
  /** Recovery only: where the checkpoint this group's state was first learned from sits. */
  checkpointOrigin: { readonly segment: number; readonly offset: number } | null = null;

  private base = 1;
  private terms = new Column("f64");
  private types = new Column<EntryType>("u8");
  private segments = new Column("f64");
  private recordOffsets = new Column("f64");
  private entryOffsets = new Column("f64");

  /** Entries [cacheFrom, lastIndex] are cached, in order. */
  private cacheFrom = 1;
  private cache: Entry[] = [];
  cacheBytes = 0;

  constructor(readonly group: GroupId) {}

  summary(): GroupSummary {
    return { hardState: this.hardState, snapshot: this.snapshot, firstIndex: this.firstIndex, lastIndex: this.lastIndex };
  }

  /** True while nothing at all has been recorded for this group. */
  get empty(): boolean {
    return this.snapshot === null && this.hardState === null && this.lastIndex === 0;
  }

  term(index: number): number | undefined {
    if (index >= this.firstIndex && index <= this.lastIndex) return this.terms.get(index - this.base);
    if (this.snapshot && index === this.snapshot.index) return this.snapshot.term;
    if (index === 0) return 0;
    return undefined;
  }

  entryType(index: number): EntryType {
    return this.types.get(index - this.base);
  }

  location(index: number): EntryLocation {
    const slot = index - this.base;
    return { segment: this.segments.get(slot), recordOffset: this.recordOffsets.get(slot), entryOffset: this.entryOffsets.get(slot) };
  }

  /** The segment holding the first entry (entries only move to later segments as the index grows), or undefined if the log is empty. */
  firstEntrySegment(): number | undefined {
    return this.lastIndex >= this.firstIndex ? this.segments.get(this.firstIndex - this.base) : undefined;
  }

  cached(index: number): Entry | undefined {
    return index >= this.cacheFrom && index <= this.lastIndex ? this.cache[index - this.cacheFrom] : undefined;
  }

  // ------------------------------------------------------------ the log rules

  /** Why a run of entries starting at `firstIndex` with these terms cannot be appended, or null. */
  checkEntries(firstIndex: number, terms: readonly number[], count = terms.length): string | null {
    if (count === 0) return "an entries record must hold at least one entry";
    if (firstIndex < this.firstIndex) return `entries start at index ${firstIndex}, below the log's first index ${this.firstIndex}`;
    if (firstIndex > this.lastIndex + 1) return `entries start at index ${firstIndex} but the log ends at ${this.lastIndex}: a gap`;
    const previous = this.term(firstIndex - 1) ?? 0;
    if (terms[0] < previous) return `entry ${firstIndex} has term ${terms[0]}, below term ${previous} of the entry before it`;
    for (let k = 1; k < count; k++) {
      if (terms[k] < terms[k - 1]) return `entry ${firstIndex + k} has term ${terms[k]}, below term ${terms[k - 1]} of the entry before it`;
    }
    return null;
  }

  /**
   * Appends (replacing any conflicting suffix) after checkEntries said yes.
   * `entries`, when given, are the appended entries themselves and go to the
   * cache, and only the first entries.length slots of the other arrays count;
   * recovery passes none and leaves the cache empty.
   */
  appendEntries(
    firstIndex: number, terms: readonly number[], types: readonly EntryType[],
    segment: number, recordOffset: number, entryOffsets: readonly number[],
    entries?: readonly Entry[],
  ): void {
    assert(firstIndex >= this.firstIndex && firstIndex <= this.lastIndex + 1, "append leaves a gap");
    // The WAL passes scratch arrays longer than the run: with entries, the run is entries.length long.
    const count = entries ? entries.length : terms.length;
    this.truncateAfter(firstIndex - 1);
    for (let k = 0; k < count; k++) {
      this.terms.push(terms[k]);
      this.types.push(types[k]);
      this.segments.push(segment);
      this.recordOffsets.push(recordOffset);
      this.entryOffsets.push(entryOffsets[k]);
    }
    this.lastIndex = firstIndex + count - 1;
    assert(this.terms.length === this.lastIndex - this.base + 1, "per-entry arrays out of step with the log");
    if (!entries) {
      this.dropCache(this.lastIndex + 1);
      return;
    }
    assert(entries[0].index === firstIndex, "cached entries differ from the appended run");
    // truncateAfter left the cache ending at firstIndex - 1, or empty and starting at firstIndex.
    for (const entry of entries) {
      this.cache.push(entry);
      this.cacheBytes += cost(entry);
    }
    assert(this.cacheFrom + this.cache.length === this.lastIndex + 1, "cache does not end at the last index");
  }

  checkHardState(hardState: HardState): string | null {
    if (this.hardState && hardState.term < this.hardState.term) return `hard state term goes back from ${this.hardState.term} to ${hardState.term}`;
    return null;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  checkSnapshotMarker(metadata: SnapshotMetadata): string | null {
    const { index, term } = metadata;
    if ((index === 0) !== (term === 0)) return `snapshot marker at index ${index} has term ${term}`;
    if (this.snapshot && index < this.snapshot.index) return `snapshot marker goes back from index ${this.snapshot.index} to ${index}`;
    if (this.snapshot && index === this.snapshot.index && term !== this.snapshot.term) {
      return `snapshot marker at index ${index} has term ${term}, but the earlier marker there has term ${this.snapshot.term}`;
    }
    if (index < this.firstIndex - 1) return `snapshot marker at index ${index} leaves entries ${index + 1}..${this.firstIndex - 1} missing before the log's first entry`;
    if (index === this.firstIndex - 1 && this.lastIndex >= this.firstIndex && term > this.terms.get(this.firstIndex - this.base)) {
      return `snapshot marker at index ${index} has term ${term}, above the term of the entry after it`;
    }
    return null;
  }

  /**
   * Applies a marker after checkSnapshotMarker said yes. The log keeps the
   * entries after the marker when the marker is the entry before the log or
   * matches an entry of it (a compaction); anything else (a snapshot from the
   * leader that the log does not contain) replaces the whole log.
   */
  setSnapshotMarker(metadata: SnapshotMetadata): void {
    const { index, term } = metadata;
    this.snapshot = metadata;
    if (index === this.firstIndex - 1) return;
    if (index >= this.firstIndex && index <= this.lastIndex && this.term(index) === term) {
      this.firstIndex = index + 1;
      if (this.cacheFrom < this.firstIndex) {
        for (let k = 0; k < this.firstIndex - this.cacheFrom; k++) this.cacheBytes -= cost(this.cache[k]);
        this.cache.splice(0, this.firstIndex - this.cacheFrom);
        this.cacheFrom = this.firstIndex;
      }
      this.reclaimDeadSlots();
      return;
    }
    this.firstIndex = index + 1;
    this.lastIndex = index;
    this.base = index + 1;
    this.terms = new Column("f64");
    this.types = new Column<EntryType>("u8");
    this.segments = new Column("f64");
    this.recordOffsets = new Column("f64");
    this.entryOffsets = new Column("f64");
    this.dropCache(index + 1);
  }

  // ------------------------------------------------------------ checkpoints

  checkpoint(): Checkpoint {
    const termRuns: Array<[number, number]> = [];
    for (let index = this.firstIndex; index <= this.lastIndex; index++) {
      const term = this.terms.get(index - this.base);
      if (termRuns.length === 0 || termRuns[termRuns.length - 1][1] !== term) termRuns.push([index, term]);
    }
    return { hardState: this.hardState, snapshot: this.snapshot, firstIndex: this.firstIndex, lastIndex: this.lastIndex, termRuns };
  }

  /** Recovery: takes the group's state from a checkpoint; its entries' bytes are in older segments (location 0) until records replace them. */
  restoreCheckpoint(checkpoint: Checkpoint, origin: { segment: number; offset: number }): void {
    assert(this.empty, "checkpoint restored over existing state");
    this.hardState = checkpoint.hardState;
    this.snapshot = checkpoint.snapshot;
    this.firstIndex = checkpoint.firstIndex;
    this.lastIndex = checkpoint.lastIndex;
    this.base = checkpoint.firstIndex;
    const count = checkpoint.lastIndex - checkpoint.firstIndex + 1;
    this.terms = Column.filled("f64", count, 0);
    for (let run = 0; run < checkpoint.termRuns.length; run++) {
      const [start, term] = checkpoint.termRuns[run];
      const end = run + 1 < checkpoint.termRuns.length ? checkpoint.termRuns[run + 1][0] : checkpoint.lastIndex + 1;
      this.terms.fill(term, start - this.base, end - this.base);
    }
    this.types = Column.filled<EntryType>("u8", count, 0);
    this.segments = Column.filled("f64", count, 0);
    this.recordOffsets = Column.filled("f64", count, 0);
    this.entryOffsets = Column.filled("f64", count, 0);
    this.dropCache(this.lastIndex + 1);
    this.checkpointOrigin = origin;
  }

  /** Recovery: why a later segment's checkpoint disagrees with what the records before it built, or null. */
  checkCheckpoint(checkpoint: Checkpoint): string | null {
    const mine = this.checkpoint();
    if (mine.firstIndex !== checkpoint.firstIndex || mine.lastIndex !== checkpoint.lastIndex) {
      return `checkpoint says the log is ${checkpoint.firstIndex}..${checkpoint.lastIndex}, the records before it say ${mine.firstIndex}..${mine.lastIndex}`;
    }
    if (JSON.stringify(mine.termRuns) !== JSON.stringify(checkpoint.termRuns)) return "checkpoint terms differ from the records before it";
    if (!sameHardState(mine.hardState, checkpoint.hardState)) return "checkpoint hard state differs from the records before it";
    if ((mine.snapshot?.index ?? -1) !== (checkpoint.snapshot?.index ?? -1) || (mine.snapshot?.term ?? -1) !== (checkpoint.snapshot?.term ?? -1)) {
      return "checkpoint snapshot marker differs from the records before it";
    }
    return null;
  }

  // ------------------------------------------------------------ locations and cache

  /** Gives the entries of batch `batch` in [low, high] their final place, once the batch's segment and offset are known. */
  settleLocations(batch: number, low: number, high: number, segment: number, baseOffset: number): void {
    const from = Math.max(low, this.firstIndex);
    const to = Math.min(high, this.lastIndex);
    for (let index = from; index <= to; index++) {
      const slot = index - this.base;
      if (this.segments.get(slot) !== -batch) continue;
      this.segments.set(slot, segment);
      this.recordOffsets.set(slot, this.recordOffsets.get(slot) + baseOffset);
      this.entryOffsets.set(slot, this.entryOffsets.get(slot) + baseOffset);
    }
  }

  /** Drops up to `count` of the oldest cached entries, never one that exists only in a batch still being written. */
  evictCache(count: number): void {
    let dropped = 0;
    while (dropped < count && dropped < this.cache.length && this.segments.get(this.cacheFrom + dropped - this.base) > 0) {
      this.cacheBytes -= cost(this.cache[dropped]);
      dropped++;
    }
    this.cache.splice(0, dropped);
    this.cacheFrom += dropped;
  }

  get cachedCount(): number {
    return this.cache.length;
  }

  /** Cuts the log (and the cache) after `index`; the cache then ends at `index` or is empty and starts at index + 1. */
  private truncateAfter(index: number): void {
    const keep = index - this.base + 1;
    if (keep < this.terms.length) {
      this.terms.truncate(keep);
      this.types.truncate(keep);
      this.segments.truncate(keep);
      this.recordOffsets.truncate(keep);
      this.entryOffsets.truncate(keep);
      this.lastIndex = index;
    }
    if (this.cacheFrom + this.cache.length < index + 1 || this.cacheFrom > index + 1) this.dropCache(index + 1);
    else {
      for (let k = index + 1 - this.cacheFrom; k < this.cache.length; k++) this.cacheBytes -= cost(this.cache[k]);
      this.cache.length = index + 1 - this.cacheFrom;
    }
  }

  private dropCache(from: number): void {
    this.cache = [];
    this.cacheFrom = from;
    this.cacheBytes = 0;
  }

  private reclaimDeadSlots(): void {
    const dead = this.firstIndex - this.base;
    if (dead < DEAD_SLOTS_MAX || dead < this.terms.length / 2) return;
    this.terms.dropFront(dead);
    this.types.dropFront(dead);
    this.segments.dropFront(dead);
    this.recordOffsets.dropFront(dead);
    this.entryOffsets.dropFront(dead);
    this.base = this.firstIndex;
  }
}

function sameHardState(left: HardState | null, right: HardState | null): boolean {
  if (!left || !right) return left === right;
  return left.term === right.term && left.vote === right.vote && left.commit === right.commit;
}

function cost(entry: Entry): number {
  return entry.data.length + CACHE_ENTRY_OVERHEAD_BYTES;
}
