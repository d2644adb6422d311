/**
 * An in-memory LogStorage: what a node has persisted. The simulator and the
 * tests use it as the node's "disk"; the server uses the WAL-backed one in
 * storage/. Element 0 of `log` is a dummy entry standing for the snapshot
 * point (its index and term), so term(snapshotIndex) is always answerable.
 */
import { assert } from "../lib/assert.js";
import { NO_NODE, type LogIndex, type Term } from "../lib/ids.js";
import { encodeConfChange } from "./conf-change.js";
import { ConfChangeTransition, ConfChangeType, EntryType, type ConfState, type Entry, type HardState, type LogStorage, type Snapshot } from "./types.js";
import { emptyConfState, limitSize } from "./util.js";

export class CompactedError extends Error {
  override name = "CompactedError";
}

export class SnapshotOutOfDateError extends Error {
  override name = "SnapshotOutOfDateError";
}

const EMPTY = new Uint8Array(0);

/** The log entries that describe an initial membership: one simple change per member. */
export function bootstrapEntries(initial: ConfState): Entry[] {
  assert(initial.votersOutgoing.length === 0, "a cluster cannot bootstrap into a joint configuration");
  const changes = [
    ...initial.voters.map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId })),
    ...initial.learners.map((nodeId) => ({ type: ConfChangeType.AddLearner, nodeId })),
  ];
  return changes.map((single, position) => ({
    term: 1,
    index: position + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ transition: ConfChangeTransition.Auto, changes: [single], context: EMPTY }),
  }));
}

export class MemoryStorage implements LogStorage {
  private hard: HardState;
  private snap: Snapshot;
  private log: Entry[];

  constructor(initial: { hardState?: HardState; confState?: ConfState } = {}) {
    this.hard = initial.hardState ?? { term: 0, vote: NO_NODE, commit: 0 };
    this.snap = { metadata: { index: 0, term: 0, confState: initial.confState ?? emptyConfState }, data: EMPTY };
    this.log = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  hardState(): HardState {
    return this.hard;
  }

  setHardState(hardState: HardState): void {
    this.hard = hardState;
  }

  firstIndex(): LogIndex {
    return this.log[0].index + 1;
  }

  lastIndex(): LogIndex {
    return this.log[0].index + this.log.length - 1;
  }

  term(index: LogIndex): Term {
    const offset = this.log[0].index;
    if (index < offset) throw new CompactedError(`term(${index}): compacted below ${offset}`);
    assert(index - offset < this.log.length, () => `term(${index}) beyond last index ${this.lastIndex()}`);
    return this.log[index - offset].term;
  }

  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] {
    const offset = this.log[0].index;
    if (low <= offset) throw new CompactedError(`entries(${low}): compacted up to ${offset}`);
    assert(high <= this.lastIndex() + 1, () => `entries(${low}, ${high}) beyond last index ${this.lastIndex()}`);
    if (low >= high) return [];
    return limitSize(this.log.slice(low - offset, high - offset), bytesMax);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.snap.metadata.index) {
      throw new SnapshotOutOfDateError(`snapshot at ${index} is not newer than the current one at ${this.snap.metadata.index}`);
    }
    this.snap = snapshot;
    this.log = [{ term, index, type: EntryType.Normal, data: EMPTY }];
  }

  /** Records that the state machine has an image at `index` (≤ last index); call compact() afterwards to drop the log below it. */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new SnapshotOutOfDateError(`snapshot at ${index} is not newer than ${this.snap.metadata.index}`);
    assert(index <= this.lastIndex(), () => `createSnapshot(${index}) beyond last index ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops every entry up to and including `index`. */
  compact(index: LogIndex): void {
    const offset = this.log[0].index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), () => `compact(${index}) beyond last index ${this.lastIndex()}`);
    const dummy = this.log[index - offset];
    this.log = [{ term: dummy.term, index: dummy.index, type: EntryType.Normal, data: EMPTY }, ...this.log.slice(index - offset + 1)];
  }

  /** Appends entries; an entry at an index already present replaces it and everything after it. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // entirely compacted already
    const fresh = first > entries[0].index ? entries.slice(first - entries[0].index) : entries;
    const offset = fresh[0].index - this.log[0].index;
    assert(offset <= this.log.length, () => `append at ${fresh[0].index} leaves a gap after ${this.lastIndex()}`);
    this.log.length = offset;
    for (const entry of fresh) this.log.push(entry);
  }

  /**
   * Bootstraps a brand-new member of a brand-new cluster the way etcd does:
   * the initial membership is written as committed ConfChange entries (term
   * 1, indexes 1..n) that every initial member holds, so a member added later
   * can learn the whole membership history by replaying the log.
   */
  bootstrap(initial: ConfState): void {
    assert(this.lastIndex() === 0 && this.hard.term === 0, "bootstrap needs an empty storage");
    const entries = bootstrapEntries(initial);
    this.append(entries);
    this.hard = { term: 1, vote: NO_NODE, commit: entries.length };
  }

  /** A deep-enough copy (entries are immutable) for simulator checkpoints. */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.hard = this.hard;
    copy.snap = this.snap;
    copy.log = this.log.slice();
    return copy;
  }
}
