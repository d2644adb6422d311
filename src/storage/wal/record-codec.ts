/**
 * The WAL's on-disk format, version 1. All integers are little-endian.
 *
 * A WAL is a directory of segment files named by a 16-digit decimal sequence
 * number, `0000000000000001.wal`, `0000000000000002.wal`, ... A segment is
 * prepared under `<name>.tmp` (header written, rest preallocated with zeros,
 * fdatasync) and renamed into place, so a segment under its final name always
 * has a whole header.
 *
 * Segment header, 64 bytes at offset 0:
 *    0  8  magic "CAIRNWAL"
 *    8  4  format version (1)
 *   12  4  CRC32C of the 64 header bytes with this field taken as zero
 *   16  8  cluster id (u64)
 *   24  8  node id (u64)
 *   32  8  segment sequence number (u64), equal to the one in the file name
 *   40 24  reserved, zero
 *
 * Records follow the header back to back, with no padding:
 *    0  4  CRC32C of bytes [4, 16 + payload length) of the record: the rest of
 *          the header and the whole payload, so one pass covers both
 *    4  4  payload length in bytes (at most limits.walRecordBytesMax)
 *    8  1  record type (1 entries, 2 hard state, 3 snapshot marker, 4 checkpoint)
 *    9  3  reserved, zero
 *   12  4  group id (u32)
 *   16  …  payload
 * After the last record the segment holds zeros up to its preallocated end: a
 * record header of sixteen zero bytes is never valid (type 0), so zeros read
 * as "nothing more here".
 *
 * Payloads (u64 values that are JavaScript numbers must be safe integers):
 *   entries (1), a contiguous run of one group's log:
 *      0  8  index of the first entry (>= 1)
 *      8  4  entry count (>= 1)
 *     12  …  per entry: term u64 (>= 1, not below the previous entry's),
 *            type u8 (0 normal, 1 conf change), data length u32, data.
 *            Entry k has index first + k.
 *   hard state (2), 24 bytes: term u64, vote u64 (a node id), commit u64.
 *   snapshot marker (3), the group's compaction point / installed snapshot:
 *      0  8  index, 8 8 term (0 only with index 0), 16 1 autoLeave (0 or 1),
 *     17  3  reserved, zero, then four id lists — voters, votersOutgoing,
 *            learners, learnersNext — each a u32 count followed by u64 ids.
 *
 *   checkpoint (4), one group's whole state at the start of a segment:
 *      0  1  flags: bit 0 a hard state follows, bit 1 a snapshot marker follows
 *      1  3  reserved, zero
 *      4  8  first index, 12 8 last index (last >= first - 1)
 *     20  4  count of term runs, then per run: index of its first entry u64,
 *            term u64 (runs start at the first index, indexes and terms rise)
 *      …     hard state payload (24 bytes) if flagged, then a snapshot marker
 *            payload if flagged. Without a marker the first index is 1, with
 *            one it is the marker's index + 1.
 *
 * Every segment's first batch begins with a checkpoint of every group that
 * has any state, so recovery can start from the oldest segment still on disk
 * after older ones were deleted: it learns each group's log shape (indexes and
 * terms) from the checkpoint, and any entry that is still in the log at the
 * end but whose bytes were only in a deleted segment is reported as missing.
 *
 * The data of a snapshot lives in the state store, not here: the marker only
 * says where the log now begins and what the membership was at that point.
 */
import { crc32c } from "../../lib/crc32c.js";
import type { GroupId, NodeId } from "../../lib/ids.js";
import { limits } from "../../lib/limits.js";
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from "../../raft/types.js";

export const FORMAT_VERSION = 1;
export const SEGMENT_MAGIC = Buffer.from("CAIRNWAL", "latin1");
export const SEGMENT_HEADER_BYTES = 64;
export const RECORD_HEADER_BYTES = 16;
export const ENTRIES_PREFIX_BYTES = 12;
export const ENTRY_HEADER_BYTES = 13;
export const HARD_STATE_PAYLOAD_BYTES = 24;
const SNAPSHOT_MARKER_FIXED_BYTES = 20;
const TWO_TO_32 = 0x1_0000_0000;
/** High half of the largest safe integer: u64 values above it do not fit a JavaScript number. */
const SAFE_HIGH_MAX = 0x1f_ffff;

export const RecordType = {
  Entries: 1,
  HardState: 2,
  SnapshotMarker: 3,
  Checkpoint: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Bytes that are not a well-formed record or header; recovery turns it into an error naming file and offset. */
export class RecordFormatError extends Error {
  override name = "RecordFormatError";
}

// ---------------------------------------------------------------- encoding

export function entriesRecordBytes(entries: readonly Entry[]): number {
  let bytes = RECORD_HEADER_BYTES + ENTRIES_PREFIX_BYTES;
  for (const entry of entries) bytes += ENTRY_HEADER_BYTES + entry.data.length;
  return bytes;
}

/**
 * Encodes a run of entries at `offset`; writes the offset of each entry's
 * header (relative to `target`) into `entryOffsets`. Returns the end offset.
 */
export function encodeEntriesRecord(
  target: Buffer, offset: number, group: GroupId, entries: readonly Entry[], entryOffsets: number[],
): number {
  let at = offset + RECORD_HEADER_BYTES;
  writeU64(target, entries[0].index, at);
  target.writeUInt32LE(entries.length, at + 8);
  at += ENTRIES_PREFIX_BYTES;
  for (let k = 0; k < entries.length; k++) {
    const entry = entries[k];
    entryOffsets[k] = at;
    writeU64(target, entry.term, at);
    target[at + 8] = entry.type;
    target.writeUInt32LE(entry.data.length, at + 9);
    target.set(entry.data, at + ENTRY_HEADER_BYTES);
    at += ENTRY_HEADER_BYTES + entry.data.length;
  }
  return finishRecord(target, offset, at, RecordType.Entries, group);
}

export function encodeHardStateRecord(target: Buffer, offset: number, group: GroupId, hardState: HardState): number {
  const at = offset + RECORD_HEADER_BYTES;
  writeHardStatePayload(target, at, hardState);
  return finishRecord(target, offset, at + HARD_STATE_PAYLOAD_BYTES, RecordType.HardState, group);
}

function writeHardStatePayload(target: Buffer, at: number, hardState: HardState): void {
  writeU64(target, hardState.term, at);
  target.writeBigUInt64LE(hardState.vote, at + 8);
  writeU64(target, hardState.commit, at + 16);
}

export function snapshotMarkerRecordBytes(metadata: SnapshotMetadata): number {
  const state = metadata.confState;
  const ids = state.voters.length + state.votersOutgoing.length + state.learners.length + state.learnersNext.length;
  return RECORD_HEADER_BYTES + SNAPSHOT_MARKER_FIXED_BYTES + 4 * 4 + 8 * ids;
}

export function encodeSnapshotMarkerRecord(target: Buffer, offset: number, group: GroupId, metadata: SnapshotMetadata): number {
  const end = writeSnapshotMarkerPayload(target, offset + RECORD_HEADER_BYTES, metadata);
  return finishRecord(target, offset, end, RecordType.SnapshotMarker, group);
}

function writeSnapshotMarkerPayload(target: Buffer, start: number, metadata: SnapshotMetadata): number {
  let at = start;
  writeU64(target, metadata.index, at);
  writeU64(target, metadata.term, at + 8);
  target[at + 16] = metadata.confState.autoLeave ? 1 : 0;
  target.fill(0, at + 17, at + 20);
  at += SNAPSHOT_MARKER_FIXED_BYTES;
  const state = metadata.confState;
  for (const list of [state.voters, state.votersOutgoing, state.learners, state.learnersNext]) {
    target.writeUInt32LE(list.length, at);
    at += 4;
    for (const id of list) {
      target.writeBigUInt64LE(id, at);
      at += 8;
    }
  }
  return at;
}

/** A group's whole state, as a checkpoint record carries it. */
export interface Checkpoint {
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMetadata | null;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** [index, term] where each run of equal terms starts, covering [firstIndex, lastIndex]. */
  readonly termRuns: ReadonlyArray<readonly [number, number]>;
}

const CHECKPOINT_FIXED_BYTES = 24;
const TERM_RUN_BYTES = 16;

export function checkpointRecordBytes(checkpoint: Checkpoint): number {
  return RECORD_HEADER_BYTES + CHECKPOINT_FIXED_BYTES + TERM_RUN_BYTES * checkpoint.termRuns.length +
    (checkpoint.hardState ? HARD_STATE_PAYLOAD_BYTES : 0) +
    (checkpoint.snapshot ? snapshotMarkerRecordBytes(checkpoint.snapshot) - RECORD_HEADER_BYTES : 0);
}

export function encodeCheckpointRecord(target: Buffer, offset: number, group: GroupId, checkpoint: Checkpoint): number {
  let at = offset + RECORD_HEADER_BYTES;
  target[at] = (checkpoint.hardState ? 1 : 0) | (checkpoint.snapshot ? 2 : 0);
  target.fill(0, at + 1, at + 4);
  writeU64(target, checkpoint.firstIndex, at + 4);
  writeU64(target, checkpoint.lastIndex, at + 12);
  target.writeUInt32LE(checkpoint.termRuns.length, at + 20);
  at += CHECKPOINT_FIXED_BYTES;
  for (const [index, term] of checkpoint.termRuns) {
    writeU64(target, index, at);
    writeU64(target, term, at + 8);
    at += TERM_RUN_BYTES;
  }
  if (checkpoint.hardState) {
    writeHardStatePayload(target, at, checkpoint.hardState);
    at += HARD_STATE_PAYLOAD_BYTES;
  }
  if (checkpoint.snapshot) at = writeSnapshotMarkerPayload(target, at, checkpoint.snapshot);
  return finishRecord(target, offset, at, RecordType.Checkpoint, group);
}

function finishRecord(target: Buffer, offset: number, end: number, type: RecordType, group: GroupId): number {
  target.writeUInt32LE(end - offset - RECORD_HEADER_BYTES, offset + 4);
  target[offset + 8] = type;
  target[offset + 9] = 0;
  target[offset + 10] = 0;
  target[offset + 11] = 0;
  target.writeUInt32LE(group, offset + 12);
  target.writeUInt32LE(crc32c(target, 0, offset + 4, end), offset);
  return end;
}

function writeU64(target: Buffer, value: number, at: number): void {
  target.writeUInt32LE(value % TWO_TO_32, at);
  target.writeUInt32LE(Math.floor(value / TWO_TO_32), at + 4);
}

// ---------------------------------------------------------------- decoding

export interface RecordHeader {
  readonly type: RecordType;
  readonly group: GroupId;
  readonly payloadLength: number;
}

/**
 * Validates the record at `offset` (header, length within `end`, CRC) and
 * returns its header; throws RecordFormatError otherwise.
 */
export function readRecordHeader(buffer: Buffer, offset: number, end: number): RecordHeader {
  if (end - offset < RECORD_HEADER_BYTES) throw new RecordFormatError(`partial record header (${end - offset} of ${RECORD_HEADER_BYTES} bytes)`);
  const payloadLength = buffer.readUInt32LE(offset + 4);
  if (payloadLength > limits.walRecordBytesMax) throw new RecordFormatError(`record length ${payloadLength} exceeds the limit of ${limits.walRecordBytesMax}`);
  const recordEnd = offset + RECORD_HEADER_BYTES + payloadLength;
  if (recordEnd > end) throw new RecordFormatError(`record of ${payloadLength} payload bytes runs past the end of the file`);
  const stored = buffer.readUInt32LE(offset);
  const computed = crc32c(buffer, 0, offset + 4, recordEnd);
  if (stored !== computed) throw new RecordFormatError(`CRC mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
  const type = buffer[offset + 8];
  if (type < RecordType.Entries || type > RecordType.Checkpoint) {
    throw new RecordFormatError(`unknown record type ${type}`);
  }
  if (buffer[offset + 9] !== 0 || buffer[offset + 10] !== 0 || buffer[offset + 11] !== 0) throw new RecordFormatError("reserved header bytes are not zero");
  return { type: type as RecordType, group: buffer.readUInt32LE(offset + 12) as GroupId, payloadLength };
}

/** Where the end of a bad record claims to be, for deciding whether only zeros follow it. */
export function claimedRecordEnd(buffer: Buffer, offset: number, end: number): number {
  if (end - offset < RECORD_HEADER_BYTES) return end;
  const payloadLength = buffer.readUInt32LE(offset + 4);
  return Math.min(end, offset + RECORD_HEADER_BYTES + payloadLength);
}

/** The shape of an entries record without its data: enough to index it. */
export interface EntriesLayout {
  readonly firstIndex: number;
  readonly terms: number[];
  readonly types: EntryType[];
  /** Offset of each entry's header, relative to the buffer. */
  readonly entryOffsets: number[];
}

export function decodeEntriesLayout(buffer: Buffer, payloadStart: number, payloadEnd: number): EntriesLayout {
  if (payloadEnd - payloadStart < ENTRIES_PREFIX_BYTES) throw new RecordFormatError("entries record too short");
  const firstIndex = readU64(buffer, payloadStart, "first index");
  const count = buffer.readUInt32LE(payloadStart + 8);
  if (firstIndex < 1) throw new RecordFormatError("entries record starts at index 0");
  if (count < 1) throw new RecordFormatError("entries record holds no entries");
  if (count > (payloadEnd - payloadStart - ENTRIES_PREFIX_BYTES) / ENTRY_HEADER_BYTES) throw new RecordFormatError(`entry count ${count} cannot fit the record`);
  if (!Number.isSafeInteger(firstIndex + count)) throw new RecordFormatError("entry indexes overflow");
  const terms: number[] = new Array(count);
  const types: EntryType[] = new Array(count);
  const entryOffsets: number[] = new Array(count);
  let at = payloadStart + ENTRIES_PREFIX_BYTES;
  let previousTerm = 1;
  for (let k = 0; k < count; k++) {
    if (payloadEnd - at < ENTRY_HEADER_BYTES) throw new RecordFormatError(`entry ${firstIndex + k} header runs past the record`);
    const term = readU64(buffer, at, "term");
    const type = buffer[at + 8];
    const length = buffer.readUInt32LE(at + 9);
    if (term < previousTerm) throw new RecordFormatError(`entry ${firstIndex + k} has term ${term}, below ${previousTerm} before it`);
    if (type !== 0 && type !== 1) throw new RecordFormatError(`entry ${firstIndex + k} has unknown type ${type}`);
    if (length > payloadEnd - at - ENTRY_HEADER_BYTES) throw new RecordFormatError(`entry ${firstIndex + k} data runs past the record`);
    terms[k] = term;
    types[k] = type;
    entryOffsets[k] = at;
    previousTerm = term;
    at += ENTRY_HEADER_BYTES + length;
  }
  if (at !== payloadEnd) throw new RecordFormatError(`${payloadEnd - at} stray bytes after the last entry`);
  return { firstIndex, terms, types, entryOffsets };
}

/** Decodes the entry whose header is at `offset` (already validated by decodeEntriesLayout). */
export function decodeEntry(buffer: Buffer, offset: number, index: number): Entry {
  const term = readU64(buffer, offset, "term");
  const type = buffer[offset + 8] as EntryType;
  const length = buffer.readUInt32LE(offset + 9);
  const start = offset + ENTRY_HEADER_BYTES;
  return { term, index, type, data: buffer.subarray(start, start + length) };
}

export function decodeHardState(buffer: Buffer, payloadStart: number, payloadEnd: number): HardState {
  if (payloadEnd - payloadStart !== HARD_STATE_PAYLOAD_BYTES) throw new RecordFormatError(`hard state payload is ${payloadEnd - payloadStart} bytes, not ${HARD_STATE_PAYLOAD_BYTES}`);
  return {
    term: readU64(buffer, payloadStart, "term"),
    vote: buffer.readBigUInt64LE(payloadStart + 8) as NodeId,
    commit: readU64(buffer, payloadStart + 16, "commit"),
  };
}

export function decodeSnapshotMarker(buffer: Buffer, payloadStart: number, payloadEnd: number): SnapshotMetadata {
  const { metadata, end } = readSnapshotMarker(buffer, payloadStart, payloadEnd);
  if (end !== payloadEnd) throw new RecordFormatError(`${payloadEnd - end} stray bytes after the snapshot marker`);
  return metadata;
}

export function decodeCheckpoint(buffer: Buffer, payloadStart: number, payloadEnd: number): Checkpoint {
  if (payloadEnd - payloadStart < CHECKPOINT_FIXED_BYTES) throw new RecordFormatError("checkpoint too short");
  const flags = buffer[payloadStart];
  if (flags > 3 || buffer[payloadStart + 1] !== 0 || buffer[payloadStart + 2] !== 0 || buffer[payloadStart + 3] !== 0) {
    throw new RecordFormatError("checkpoint flags or reserved bytes are invalid");
  }
  const firstIndex = readU64(buffer, payloadStart + 4, "first index");
  const lastIndex = readU64(buffer, payloadStart + 12, "last index");
  const runCount = buffer.readUInt32LE(payloadStart + 20);
  if (firstIndex < 1 || lastIndex < firstIndex - 1) throw new RecordFormatError(`checkpoint log range ${firstIndex}..${lastIndex} is impossible`);
  if ((runCount === 0) !== (lastIndex < firstIndex)) throw new RecordFormatError(`checkpoint has ${runCount} term runs for ${lastIndex - firstIndex + 1} entries`);
  if (runCount > (payloadEnd - payloadStart - CHECKPOINT_FIXED_BYTES) / TERM_RUN_BYTES) throw new RecordFormatError("checkpoint term runs run past the record");
  let at = payloadStart + CHECKPOINT_FIXED_BYTES;
  const termRuns: Array<[number, number]> = [];
  for (let k = 0; k < runCount; k++, at += TERM_RUN_BYTES) {
    const index = readU64(buffer, at, "run index");
    const term = readU64(buffer, at + 8, "run term");
    const previous = termRuns[k - 1];
    const ordered = previous ? index > previous[0] && term > previous[1] : index === firstIndex;
    if (!ordered || index > lastIndex || term < 1) throw new RecordFormatError(`checkpoint term run ${k} (index ${index}, term ${term}) is out of order`);
    termRuns.push([index, term]);
  }
  let hardState: HardState | null = null;
  if (flags & 1) {
    if (payloadEnd - at < HARD_STATE_PAYLOAD_BYTES) throw new RecordFormatError("checkpoint hard state runs past the record");
    hardState = decodeHardState(buffer, at, at + HARD_STATE_PAYLOAD_BYTES);
    at += HARD_STATE_PAYLOAD_BYTES;
  }
  let snapshot: SnapshotMetadata | null = null;
  if (flags & 2) {
    const marker = readSnapshotMarker(buffer, at, payloadEnd);
    snapshot = marker.metadata;
    at = marker.end;
  }
  if (at !== payloadEnd) throw new RecordFormatError(`${payloadEnd - at} stray bytes after the checkpoint`);
  if (firstIndex !== (snapshot ? snapshot.index + 1 : 1)) throw new RecordFormatError(`checkpoint log starts at ${firstIndex}, not right after its snapshot marker`);
  return { hardState, snapshot, firstIndex, lastIndex, termRuns };
}

function readSnapshotMarker(buffer: Buffer, payloadStart: number, payloadEnd: number): { metadata: SnapshotMetadata; end: number } {
  if (payloadEnd - payloadStart < SNAPSHOT_MARKER_FIXED_BYTES + 16) throw new RecordFormatError("snapshot marker too short");
  const index = readU64(buffer, payloadStart, "index");
  const term = readU64(buffer, payloadStart + 8, "term");
  const autoLeave = buffer[payloadStart + 16];
  if (autoLeave > 1) throw new RecordFormatError(`snapshot marker autoLeave is ${autoLeave}`);
  if (buffer[payloadStart + 17] !== 0 || buffer[payloadStart + 18] !== 0 || buffer[payloadStart + 19] !== 0) {
    throw new RecordFormatError("snapshot marker reserved bytes are not zero");
  }
  if ((index === 0) !== (term === 0)) throw new RecordFormatError(`snapshot marker at index ${index} has term ${term}`);
  let at = payloadStart + SNAPSHOT_MARKER_FIXED_BYTES;
  const lists: NodeId[][] = [];
  for (let list = 0; list < 4; list++) {
    if (payloadEnd - at < 4) throw new RecordFormatError("snapshot marker id list runs past the record");
    const count = buffer.readUInt32LE(at);
    at += 4;
    if (count > (payloadEnd - at) / 8) throw new RecordFormatError("snapshot marker id list runs past the record");
    const ids: NodeId[] = [];
    for (let k = 0; k < count; k++, at += 8) ids.push(buffer.readBigUInt64LE(at) as NodeId);
    lists.push(ids);
  }
  const confState: ConfState = { voters: lists[0], votersOutgoing: lists[1], learners: lists[2], learnersNext: lists[3], autoLeave: autoLeave === 1 };
  return { metadata: { index, term, confState }, end: at };
}

function readU64(buffer: Buffer, at: number, what: string): number {
  const high = buffer.readUInt32LE(at + 4);
  if (high > SAFE_HIGH_MAX) throw new RecordFormatError(`${what} does not fit a safe integer`);
  return high * TWO_TO_32 + buffer.readUInt32LE(at);
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------- segment header

export interface SegmentHeader {
  readonly version: number;
  readonly clusterId: bigint;
  readonly nodeId: bigint;
  readonly sequence: number;
}

export function encodeSegmentHeader(clusterId: bigint, nodeId: bigint, sequence: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeBigUInt64LE(clusterId, 16);
  header.writeBigUInt64LE(nodeId, 24);
  writeU64(header, sequence, 32);
  header.writeUInt32LE(crc32c(header), 12);
  return header;
}

export type SegmentHeaderProblem =
  | { readonly kind: "short"; readonly length: number }
  | { readonly kind: "magic" }
  | { readonly kind: "version"; readonly version: number }
  | { readonly kind: "crc"; readonly stored: number; readonly computed: number }
  | { readonly kind: "reserved" };

/** Decodes a segment header, or says what is wrong with it (in the order a reader must check). */
export function decodeSegmentHeader(bytes: Buffer, length: number): SegmentHeader | SegmentHeaderProblem {
  if (length < SEGMENT_HEADER_BYTES) return { kind: "short", length };
  if (!bytes.subarray(0, 8).equals(SEGMENT_MAGIC)) return { kind: "magic" };
  // A newer format may frame its header differently, so the version is judged before the CRC.
  const version = bytes.readUInt32LE(8);
  if (version !== FORMAT_VERSION) return { kind: "version", version };
  const copy = Buffer.from(bytes.subarray(0, SEGMENT_HEADER_BYTES));
  const stored = copy.readUInt32LE(12);
  copy.writeUInt32LE(0, 12);
  const computed = crc32c(copy);
  if (stored !== computed) return { kind: "crc", stored, computed };
  for (let at = 40; at < SEGMENT_HEADER_BYTES; at++) if (copy[at] !== 0) return { kind: "reserved" };
  const sequenceHigh = copy.readUInt32LE(36);
  return {
    version,
    clusterId: copy.readBigUInt64LE(16),
    nodeId: copy.readBigUInt64LE(24),
    sequence: sequenceHigh * TWO_TO_32 + copy.readUInt32LE(32),
  };
}

export function isSegmentHeader(value: SegmentHeader | SegmentHeaderProblem): value is SegmentHeader {
  return !("kind" in value);
}
