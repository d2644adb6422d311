/**
 * The terms of a node's Raft log as the application has seen it through its
 * Readys (persisted or not). The checker reads it to test leader
 * completeness; it is rebuilt from durable storage after a crash.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, Term } from "../lib/ids.js";
import type { Entry, LogStorage } from "../raft/types.js";
import type { LogView } from "./checkers.js";

export class ShadowLog implements LogView {
  snapshotIndex: LogIndex = 0;
  snapshotTerm: Term = 0;
  private terms: Term[] = [];

  get lastIndex(): LogIndex {
    return this.snapshotIndex + this.terms.length;
  }

  termAt(index: LogIndex): Term | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.terms[index - this.snapshotIndex - 1];
  }

  resetFromStorage(storage: LogStorage): void {
    this.snapshotIndex = storage.firstIndex() - 1;
    this.snapshotTerm = storage.term(this.snapshotIndex);
    this.terms = [];
    const last = storage.lastIndex();
    for (let index = this.snapshotIndex + 1; index <= last; index++) this.terms.push(storage.term(index));
  }

  installSnapshot(index: LogIndex, term: Term): void {
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.terms = [];
  }

  /** Entries replace whatever the log held from their first index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    assert(first <= this.lastIndex + 1, () => `shadow log gap: entries from ${first} after ${this.lastIndex}`);
    let skip = 0;
    if (first <= this.snapshotIndex) skip = this.snapshotIndex + 1 - first;
    this.terms.length = Math.max(0, first + skip - this.snapshotIndex - 1);
    for (let position = skip; position < entries.length; position++) this.terms.push(entries[position].term);
  }
}
