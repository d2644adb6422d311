/**
 * The synchronous store the MVCC rules run on: three ordered byte-keyed
 * tables, like etcd's buckets on bbolt. kv/ owns the layout (encoding.ts);
 * storage/ implements the tables on LMDB and in memory.
 *
 * Reads happen inside `read(fn)`: one consistent view for the duration of
 * the synchronous callback. No read view outlives a callback: long reads
 * (streamed ranges, snapshots) are consistent through MVCC instead — they
 * read at a fixed revision and pin it against compaction (see mvcc.ts) —
 * so no long-lived LMDB read transaction holds pages and free space.
 */
import { utf8 } from "./encoding.js";
import { NewerFormatError } from "./errors.js";

export const KvTable = {
  /** (main, sub) revision → RevisionRecord: the value history, in revision order. */
  Revisions: 0,
  /** escaped key ‖ terminator ‖ inverted revision → IndexValue: each key's generations, newest first. */
  KeyIndex: 1,
  /** Named values: format version, applied index and term, current and compact revision, compaction progress. */
  Meta: 2,
} as const;
export type KvTable = (typeof KvTable)[keyof typeof KvTable];
export const KV_TABLES: readonly KvTable[] = [KvTable.Revisions, KvTable.KeyIndex, KvTable.Meta];

export interface KvEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface KvRangeOptions {
  /** Inclusive lower bound; absent means from the first key. */
  readonly start?: Uint8Array;
  /** Exclusive upper bound; absent means to the last key. */
  readonly end?: Uint8Array;
  /** Walk [start, end) from the highest key down. */
  readonly reverse?: boolean;
}

export interface KvReader {
  get(table: KvTable, key: Uint8Array): Uint8Array | undefined;
  /** Entries in byte-wise key order; lazy, so callers may stop early. Consume it inside the callback. */
  range(table: KvTable, options?: KvRangeOptions): Iterable<KvEntry>;
}

export interface KvWriter extends KvReader {
  put(table: KvTable, key: Uint8Array, value: Uint8Array): void;
  delete(table: KvTable, key: Uint8Array): void;
}

export interface KvStore {
  /** Where the store lives, for error messages (a path, or "memory"). */
  readonly location: string;
  /** Runs fn on one consistent view. */
  read<T>(fn: (reader: KvReader) => T): T;
  /** Runs fn in one atomic write transaction: all of its writes commit together, or none if fn throws. Reads see its own writes. */
  write<T>(fn: (writer: KvWriter) => T): T;
}

/** Version of the table layout above. Bump it when the layout changes incompatibly. */
export const KV_FORMAT_VERSION = 1;

export const MetaKey = {
  formatVersion: utf8("format-version"),
  appliedIndex: utf8("applied-index"),
  appliedTerm: utf8("applied-term"),
  currentRevision: utf8("current-revision"),
  compactRevision: utf8("compact-revision"),
  /** Revision up to which history is physically removed. */
  physicalCompactRevision: utf8("physical-compact-revision"),
  /** Target of the compaction pass in progress (0: none). */
  compactPassTarget: utf8("compact-pass-target"),
  /** Key-index key the pass in progress resumes from. */
  compactPassCursor: utf8("compact-pass-cursor"),
} as const;

export function encodeMetaNumber(value: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(value / 0x1_0000_0000));
  view.setUint32(4, value >>> 0);
  return out;
}

export function decodeMetaNumber(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}

/**
 * Checks the layout version and stamps a fresh store. A newer version is
 * refused before anything is written.
 */
export function checkFormatVersion(store: KvStore): void {
  const found = store.read((reader) => reader.get(KvTable.Meta, MetaKey.formatVersion));
  if (found === undefined) {
    store.write((writer) => {
      if (writer.get(KvTable.Meta, MetaKey.formatVersion) === undefined) {
        writer.put(KvTable.Meta, MetaKey.formatVersion, encodeMetaNumber(KV_FORMAT_VERSION));
      }
    });
    return;
  }
  const version = decodeMetaNumber(found);
  if (version > KV_FORMAT_VERSION) throw new NewerFormatError(store.location, version, KV_FORMAT_VERSION);
}
