/**
 * A naive model of what one group's WAL must hold after a crash: everything
 * whose append() was acknowledged, plus possibly a prefix of the records still
 * in flight (a crash keeps some unsynced writes and cuts the torn one away).
 * Recovery that comes back with anything else lost an acknowledged record or
 * invented one: the simulator reports it as a durability violation.
 *
 * The model keeps terms only (the checker's log-matching property already
 * compares entry data across nodes) and applies records by the WAL's contract:
 * entries replace the log from their first index on; a marker that matches an
 * entry of the log (or the entry before it) compacts up to it, any other
 * marker replaces the whole log.
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex, Term } from "../lib/ids.js";
import type { HardState, SnapshotMetadata } from "../raft/types.js";
import type { Wal, WalRecord } from "../storage/wal/wal.js";

export class DurableLogState {
  hardState: HardState | null = null;
  marker: SnapshotMetadata | null = null;
  firstIndex: LogIndex = 1;
  /** Terms of the entries firstIndex..lastIndex. */
  terms: Term[] = [];

  get lastIndex(): LogIndex {
    return this.firstIndex + this.terms.length - 1;
  }

  /** What a WAL holds for `group` right now (the group's view, unsynced appends included). */
  static read(wal: Wal, group: GroupId): DurableLogState {
    const state = new DurableLogState();
    state.hardState = wal.hardState(group);
    state.marker = wal.snapshotMetadata(group);
    state.firstIndex = wal.firstIndex(group);
    const last = wal.lastIndex(group);
    for (let index = state.firstIndex; index <= last; index++) state.terms.push(wal.term(group, index));
    return state;
  }

  clone(): DurableLogState {
    const copy = new DurableLogState();
    copy.hardState = this.hardState;
    copy.marker = this.marker;
    copy.firstIndex = this.firstIndex;
    copy.terms = this.terms.slice();
    return copy;
  }

  termAt(index: LogIndex): Term | undefined {
    if (index >= this.firstIndex && index <= this.lastIndex) return this.terms[index - this.firstIndex];
    if (this.marker !== null && index === this.marker.index) return this.marker.term;
    return index === 0 ? 0 : undefined;
  }

  apply(record: WalRecord): void {
    switch (record.type) {
      case "hardState":
        this.hardState = record.hardState;
        return;
      case "entries": {
        const first = record.entries[0].index;
        assert(first >= this.firstIndex && first <= this.lastIndex + 1, () => `model: entries from ${first} do not join a log ${this.firstIndex}..${this.lastIndex}`);
        this.terms.length = first - this.firstIndex;
        for (const entry of record.entries) this.terms.push(entry.term);
        return;
      }
      case "snapshot": {
        const { index, term } = record.metadata;
        this.marker = record.metadata;
        if (index === this.firstIndex - 1) return;
        if (index >= this.firstIndex && index <= this.lastIndex && this.termAt(index) === term) {
          this.terms.splice(0, index + 1 - this.firstIndex);
        } else {
          this.terms = [];
        }
        this.firstIndex = index + 1;
        return;
      }
    }
  }

  /** The first way `other` differs from this state, or null when they agree. */
  difference(other: DurableLogState): string | null {
    const hard = describeHardState(this.hardState);
    if (hard !== describeHardState(other.hardState)) return `hard state ${describeHardState(other.hardState)}, expected ${hard}`;
    const marker = describeMarker(this.marker);
    if (marker !== describeMarker(other.marker)) return `snapshot marker ${describeMarker(other.marker)}, expected ${marker}`;
    if (this.firstIndex !== other.firstIndex || this.lastIndex !== other.lastIndex) {
      return `log ${other.firstIndex}..${other.lastIndex}, expected ${this.firstIndex}..${this.lastIndex}`;
    }
    for (let position = 0; position < this.terms.length; position++) {
      if (this.terms[position] !== other.terms[position]) {
        return `entry ${this.firstIndex + position} has term ${other.terms[position]}, expected ${this.terms[position]}`;
      }
    }
    return null;
  }
}

function describeHardState(hardState: HardState | null): string {
  return hardState === null ? "none" : `term=${hardState.term} vote=${hardState.vote} commit=${hardState.commit}`;
}

function describeMarker(marker: SnapshotMetadata | null): string {
  if (marker === null) return "none";
  const conf = marker.confState;
  return `${marker.index}/t${marker.term} voters ${conf.voters.join(",")} outgoing ${conf.votersOutgoing.join(",")} learners ${conf.learners.join(",")} next ${conf.learnersNext.join(",")}${conf.autoLeave ? " auto" : ""}`;
}

/**
 * The appends of one process lifetime: acknowledged ones folded into a state,
 * the rest kept in order until they are acknowledged or a crash ends them.
 */
export class DurabilityLedger {
  private acknowledged = new DurableLogState();
  private readonly pending: (readonly WalRecord[])[] = [];

  get pendingAppends(): number {
    return this.pending.length;
  }

  appended(records: readonly WalRecord[]): void {
    this.pending.push(records);
  }

  /** The oldest pending append was acknowledged (appends are acknowledged in order). */
  acknowledge(records: readonly WalRecord[]): void {
    const oldest = this.pending.shift();
    assert(oldest === records, "WAL appends acknowledged out of order");
    for (const record of records) this.acknowledged.apply(record);
  }

  /**
   * Checks what recovery found against what was acknowledged; returns null and
   * adopts it when it is the acknowledged state plus some prefix of the records
   * in flight, else describes what is wrong (and adopts nothing).
   */
  recover(recovered: DurableLogState): string | null {
    const candidate = this.acknowledged.clone();
    const wrong = candidate.difference(recovered);
    let matched = wrong === null;
    for (const records of this.pending) {
      for (const record of records) {
        if (matched) break;
        candidate.apply(record);
        matched = candidate.difference(recovered) === null;
      }
    }
    if (!matched) return wrong;
    this.adopt(recovered);
    return null;
  }

  /** Starts a new lifetime from `recovered`, whatever it holds (after a problem was reported, or to go on regardless). */
  adopt(recovered: DurableLogState): void {
    this.acknowledged = recovered;
    this.pending.length = 0;
  }
}
