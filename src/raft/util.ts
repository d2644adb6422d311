import type { ConfState, Entry } from "./types.js";
import type { NodeId } from "../lib/ids.js";

export function compareIds(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort(compareIds);
}

export const emptyConfState: ConfState = Object.freeze({
  voters: [],
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
});

/** A ConfState with the given voters (and learners), not joint. */
export function confState(voters: readonly (bigint | number)[], learners: readonly (bigint | number)[] = []): ConfState {
  return {
    voters: sortedIds(voters.map((id) => BigInt(id) as NodeId)),
    votersOutgoing: [],
    learners: sortedIds(learners.map((id) => BigInt(id) as NodeId)),
    learnersNext: [],
    autoLeave: false,
  };
}

/** Bytes an entry counts for in size limits (payload plus a small fixed overhead). */
export function entryBytes(entry: Entry): number {
  return entry.data.length + 24;
}

/** Keeps a prefix of entries whose total size stays within bytesMax, but always at least one entry. */
export function limitSize(entries: Entry[], bytesMax: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entryBytes(entries[0]);
  let count = 1;
  while (count < entries.length) {
    size += entryBytes(entries[count]);
    if (size > bytesMax) break;
    count++;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

/** A string key for a byte context (read requests are matched by context). */
export function bytesKey(bytes: Uint8Array): string {
  let key = "";
  for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]);
  return key;
}
