/**
 * The Raft log as the core sees it: what storage has persisted, plus the
 * unstable tail (entries and possibly a snapshot not yet handed to, or not
 * yet acknowledged by, the application). Invariants:
 *   applied <= committed <= lastIndex
 *   unstable.offset <= storage.lastIndex() + 1 (the unstable tail may replace a persisted suffix)
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, Term } from "../lib/ids.js";
import type { Entry, LogStorage, Snapshot } from "./types.js";
import { limitSize } from "./util.js";

class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: LogIndex;

  constructor(offset: LogIndex) {
    this.offset = offset;
  }

  maybeFirstIndex(): LogIndex | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): LogIndex | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(index: LogIndex): Term | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset].term;
  }

  /** The entries up to (index, term) are persisted: drop them, unless a newer leader has replaced them meanwhile. */
  stableTo(index: LogIndex, term: Term): boolean {
    const entryTerm = this.maybeTerm(index);
    if (entryTerm === undefined || entryTerm !== term || index < this.offset) return false;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
    return true;
  }

  stableSnapTo(index: LogIndex): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const after = entries[0].index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // Replaces everything unstable (and a persisted suffix, which the next persist overwrites).
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const entry of entries) this.entries.push(entry);
    }
  }

  slice(low: LogIndex, high: LogIndex): Entry[] {
    assert(low >= this.offset && high <= this.offset + this.entries.length && low <= high,
      () => `unstable slice [${low}, ${high}) out of [${this.offset}, ${this.offset + this.entries.length})`);
    return this.entries.slice(low - this.offset, high - this.offset);
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: Unstable;
  committed: LogIndex;
  applied: LogIndex;

  constructor(storage: LogStorage) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): LogIndex {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index that is persisted (not in the unstable tail). */
  stableLastIndex(): LogIndex {
    // A snapshot not yet persisted replaces the whole persisted log: nothing of ours is durable yet.
    if (this.unstable.snapshot) return 0;
    return Math.min(this.unstable.offset - 1, this.storage.lastIndex());
  }

  lastTerm(): Term {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "the last entry always has a term");
    return term;
  }

  /** The term of the entry at index, or undefined if compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (index < this.storage.firstIndex() - 1) return undefined;
    return this.storage.term(index);
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * A follower's append: if our log has (index, logTerm), add `entries` after
   * it (replacing a conflicting suffix) and advance commit. Returns the index
   * of the last new entry, or undefined when the log does not match.
   */
  maybeAppend(index: LogIndex, logTerm: Term, committed: LogIndex, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - entries[0].index));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): LogIndex {
    if (entries.length === 0) return this.lastIndex();
    assert(entries[0].index - 1 >= this.committed, () => `append after ${entries[0].index - 1} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The first index whose term differs from ours (or the first new index), or 0 if all entries are present. */
  findConflict(entries: readonly Entry[]): LogIndex {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ index whose term is ≤ term: where a log with (index,
   * term) and ours can first possibly agree. Used on both sides of a rejected
   * append to skip a whole term of mismatches per round trip.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    let at = Math.min(index, this.lastIndex());
    for (; at >= 0; at--) {
      const ourTerm = this.term(at);
      if (ourTerm === undefined) return { index: at, term: 0 }; // compacted: cannot look further
      if (ourTerm <= term) return { index: at, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} is beyond the last index ${this.lastIndex()}: was the log lost or truncated?`);
    this.committed = index;
  }

  appliedTo(index: LogIndex): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, () => `applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  /** Entries [low, high) from storage and the unstable tail, limited in size (at least one). */
  slice(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] {
    if (low >= high) return [];
    assert(low >= this.firstIndex() && high <= this.lastIndex() + 1, () => `slice [${low}, ${high}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    const offset = this.unstable.offset;
    let result: Entry[] = [];
    if (low < offset) {
      result = this.storage.entries(low, Math.min(high, offset), bytesMax);
      if (result.length < Math.min(high, offset) - low) return result; // size limit reached
    }
    if (high > offset) {
      const tail = this.unstable.slice(Math.max(low, offset), high);
      result = result.length > 0 ? result.concat(tail) : tail;
    }
    return limitSize(result, bytesMax);
  }

  /** Entries from `low` to the end, or undefined when low is compacted away. */
  entriesFrom(low: LogIndex, bytesMax: number): Entry[] | undefined {
    if (low < this.firstIndex()) return undefined;
    if (low > this.lastIndex()) return [];
    return this.slice(low, this.lastIndex() + 1, bytesMax);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  nextCommittedEntries(bytesMax: number): Entry[] {
    const low = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < low) return [];
    return this.slice(low, this.committed + 1, bytesMax);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  stableTo(index: LogIndex, term: Term): boolean {
    return this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: LogIndex): void {
    this.unstable.stableSnapTo(index);
  }
}
