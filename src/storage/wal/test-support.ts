/** Helpers shared by the WAL's tests (not used by production code). */
import { clusterId, groupId, nodeId, type GroupId } from "../../lib/ids.js";
import type { Entry, EntryType } from "../../raft/types.js";
import type { FileSystem } from "../fs/file-system.js";
import { MemoryFileSystem } from "../fs/memory-file-system.js";
import { Wal, type WalOptions } from "./wal.js";

export const TEST_CLUSTER = clusterId(0xc1a5_7e12_3456_789an);
export const TEST_NODE = nodeId(0xfeed_0000_0000_0001n);
export const G0: GroupId = groupId(0);
export const G1: GroupId = groupId(1);

/** Deterministic, never-all-zero data for entry `index` of term `term` in `group`. */
export function entryData(group: number, index: number, term: number, length = 8 + (index % 5)): Uint8Array {
  const data = new Uint8Array(length);
  for (let k = 0; k < length; k++) data[k] = ((group * 31 + index * 7 + term * 13 + k) % 251) + 1;
  return data;
}

export function makeEntries(group: number, firstIndex: number, terms: readonly number[], type: EntryType = 0): Entry[] {
  return terms.map((term, k) => ({ index: firstIndex + k, term, type, data: entryData(group, firstIndex + k, term) }));
}

export function openTestWal(fileSystem: FileSystem, overrides: Partial<WalOptions> = {}): Promise<Wal> {
  return Wal.open({
    fileSystem,
    directory: "/wal",
    clusterId: TEST_CLUSTER,
    nodeId: TEST_NODE,
    segmentBytes: 4096,
    ...overrides,
  });
}

export function memoryFileSystem(): MemoryFileSystem {
  return new MemoryFileSystem();
}

/** Entries as plain comparable objects. */
export function plain(entries: readonly Entry[]): Array<{ index: number; term: number; type: number; data: number[] }> {
  return entries.map((entry) => ({ index: entry.index, term: entry.term, type: entry.type, data: [...entry.data] }));
}

/** Everything a WAL holds, as plain data, for comparing two WALs. */
export function dumpWal(wal: Wal): unknown {
  return wal.groupIds().map((group) => {
    const first = wal.firstIndex(group);
    const last = wal.lastIndex(group);
    return {
      group,
      hardState: wal.hardState(group),
      snapshot: wal.snapshotMetadata(group),
      firstIndex: first,
      lastIndex: last,
      entries: plain(wal.entries(group, first, last + 1)),
    };
  });
}

/** A new in-memory file system holding durable copies of `source`'s files. */
export function copyFileSystem(source: MemoryFileSystem, change?: (path: string, bytes: Uint8Array) => Uint8Array): MemoryFileSystem {
  const copy = new MemoryFileSystem();
  void copy.mkdir("/wal");
  for (const path of source.listFiles()) {
    const bytes = source.readFile(path);
    copy.writeFile(path, change ? change(path, bytes) : bytes);
  }
  return copy;
}

/** Offsets of the records in a segment's bytes, with the end of the last one appended. */
export function recordOffsets(bytes: Uint8Array): number[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const offsets: number[] = [];
  let at = 64;
  while (at + 16 <= view.length && view[at + 8] !== 0) {
    offsets.push(at);
    at += 16 + view.readUInt32LE(at + 4);
  }
  offsets.push(at);
  return offsets;
}
