import { describe, expect, it } from "vitest";
import { RaftLog } from "./log.js";
import { MemoryStorage } from "./memory-storage.js";
import { EntryType, type Entry } from "./types.js";

const none = new Uint8Array(0);
/** Entries from "term:term:term" starting at index `from`. */
function entries(terms: number[], from = 1): Entry[] {
  return terms.map((term, offset) => ({ term, index: from + offset, type: EntryType.Normal, data: none }));
}

function logWith(terms: number[]): RaftLog {
  const storage = new MemoryStorage();
  storage.append(entries(terms));
  return new RaftLog(storage);
}

describe("RaftLog", () => {
  it("finds where a conflicting follower log may first match, skipping a whole term at a time", () => {
    const log = logWith([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
    expect(log.findConflictByTerm(10, 3)).toEqual({ index: 3, term: 1 });
    expect(log.findConflictByTerm(10, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(10, 6)).toEqual({ index: 10, term: 6 });
    expect(log.findConflictByTerm(20, 0)).toEqual({ index: 0, term: 0 });
  });

  it("appends after a matching entry, replaces a conflicting suffix, and refuses a mismatch", () => {
    const log = logWith([1, 1, 2, 2]);
    expect(log.maybeAppend(2, 1, 0, entries([3, 3], 3))).toBe(4);
    expect(log.term(3)).toBe(3);
    expect(log.lastIndex()).toBe(4);
    expect(log.maybeAppend(4, 2, 0, entries([3], 5))).toBeUndefined();
    // Re-sending entries we already have changes nothing and keeps the rest.
    expect(log.maybeAppend(2, 1, 0, entries([3], 3))).toBe(3);
    expect(log.lastIndex()).toBe(4);
  });

  it("commits no further than the last entry the append carried", () => {
    const log = logWith([1, 1]);
    log.maybeAppend(2, 1, 100, entries([1], 3));
    expect(log.committed).toBe(3);
  });

  it("never overwrites a committed entry", () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, entries([2, 2], 2))).toThrow(/conflicts with committed/);
  });

  it("treats entries as persisted only if a newer leader did not replace them meanwhile", () => {
    const log = logWith([1]);
    log.append(entries([1, 1], 2));
    // The application is persisting [2, 3] at term 1 when a new leader overwrites 3.
    log.maybeAppend(2, 1, 0, entries([2], 3));
    expect(log.stableTo(3, 1)).toBe(false);
    expect(log.unstable.offset).toBe(2);
    expect(log.stableTo(3, 2)).toBe(true);
    expect(log.unstable.entries).toEqual([]);
  });

  it("compares logs by last term, then by length (§5.4.1)", () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });
});
