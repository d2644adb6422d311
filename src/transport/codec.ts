/**
 * The binary form of a Raft Message on the wire (big-endian throughout).
 *
 *   u8  type            u8  flags (bit 0 reject, bit 1 snapshot present)
 *   u32 group
 *   u64 to              u64 from
 *   u64 term  u64 logTerm  u64 index  u64 commit  u64 rejectHint
 *   u32 context length, bytes
 *   u32 entry count, then per entry: u64 term, u64 index, u8 type, u32 length, bytes
 *   if a snapshot is present:
 *     u64 index, u64 term, u8 autoLeave,
 *     voters, votersOutgoing, learners, learnersNext: u32 count, then u64 ids
 *     u32 data length, bytes
 *
 * Terms and indexes are JavaScript numbers (safe integers); they travel as
 * u64 so the format does not change if they ever outgrow 2^53, and the
 * decoder refuses anything above 2^53 - 1. Encoding writes straight into a
 * caller's buffer at an offset so a batch of messages costs one allocation.
 *
 * Decoding validates everything (STYLE habit 5, the Raft core trusts what it
 * is given): lengths against the bytes present, enum values, ids, the shape of
 * append messages. A bad message is a MessageDecodeError, never a partially
 * filled object. Byte fields of a decoded message (entry data, context,
 * snapshot data) are views into the input buffer, not copies.
 */
import { assert } from "../lib/assert.js";
import { MAX_UINT64, type GroupId, type NodeId } from "../lib/ids.js";
import { EntryType, MessageType, type ConfState, type Entry, type Message, type Snapshot } from "../raft/types.js";
import { MessageDecodeError } from "./errors.js";

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_SNAPSHOT;

/** Bytes of a message with no entries, context or snapshot. */
export const MESSAGE_FIXED_BYTES = 1 + 1 + 4 + 8 + 8 + 8 * 5 + 4 + 4;
const ENTRY_FIXED_BYTES = 8 + 8 + 1 + 4;
const SNAPSHOT_FIXED_BYTES = 8 + 8 + 1 + 4 * 4 + 4;
const TWO_TO_32 = 0x1_0000_0000;
/** The high word of a u64 that still fits a safe integer (2^53 - 1). */
const SAFE_HIGH_WORD_MAX = 0x1f_ffff;

/**
 * Message types that only ever exist inside one node (the core's own
 * triggers and the transport's reports). A peer sending one would be forging
 * a local event, so they are refused on both sides of the wire.
 */
const LOCAL_MESSAGE_TYPES: ReadonlySet<number> = new Set([
  MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum,
]);
const MESSAGE_TYPE_MAX = Math.max(...Object.values(MessageType));

export function isWireMessageType(type: number): boolean {
  return Number.isInteger(type) && type >= 0 && type <= MESSAGE_TYPE_MAX && !LOCAL_MESSAGE_TYPES.has(type);
}

/** Exact number of bytes encodeMessageInto will write for this message. */
export function encodedMessageBytes(message: Message): number {
  let bytes = MESSAGE_FIXED_BYTES + message.context.length;
  const entries = message.entries;
  for (let i = 0; i < entries.length; i++) bytes += ENTRY_FIXED_BYTES + entries[i].data.length;
  const snapshot = message.snapshot;
  if (snapshot !== null) {
    const conf = snapshot.metadata.confState;
    bytes += SNAPSHOT_FIXED_BYTES + snapshot.data.length +
      8 * (conf.voters.length + conf.votersOutgoing.length + conf.learners.length + conf.learnersNext.length);
  }
  return bytes;
}

/** Writes the message at `offset` and returns the offset just past it. The buffer must have room (see encodedMessageBytes). */
export function encodeMessageInto(message: Message, buffer: Buffer, offset: number): number {
  if (!isWireMessageType(message.type)) assert(false, `message type ${message.type} does not travel between nodes`);
  let at = offset;
  assert(Number.isInteger(message.group) && message.group >= 0 && message.group <= 0xffff_ffff, "group id must be a uint32");
  at = writeUint8(buffer, at, message.type);
  at = writeUint8(buffer, at, (message.reject ? FLAG_REJECT : 0) | (message.snapshot !== null ? FLAG_SNAPSHOT : 0));
  at = writeUint32(buffer, at, message.group);
  at = writeId(buffer, at, message.to);
  at = writeId(buffer, at, message.from);
  at = writeCount(buffer, at, message.term);
  at = writeCount(buffer, at, message.logTerm);
  at = writeCount(buffer, at, message.index);
  at = writeCount(buffer, at, message.commit);
  at = writeCount(buffer, at, message.rejectHint);
  at = writeBytes(buffer, at, message.context);
  const entries = message.entries;
  at = writeUint32(buffer, at, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    at = writeCount(buffer, at, entry.term);
    at = writeCount(buffer, at, entry.index);
    at = writeUint8(buffer, at, entry.type);
    at = writeBytes(buffer, at, entry.data);
  }
  if (message.snapshot !== null) at = writeSnapshot(buffer, at, message.snapshot);
  return at;
}

/** Encodes one message into a fresh buffer of exactly its size. */
export function encodeMessage(message: Message): Buffer {
  const buffer = Buffer.allocUnsafe(encodedMessageBytes(message));
  const end = encodeMessageInto(message, buffer, 0);
  assert(end === buffer.length, "encodedMessageBytes disagrees with encodeMessageInto");
  return buffer;
}

/** Decodes exactly one message occupying all of `bytes`. Throws MessageDecodeError on anything malformed or truncated. */
export function decodeMessage(bytes: Uint8Array): Message {
  const reader = new Reader(bytes);
  const message = readMessage(reader);
  if (reader.offset !== bytes.length) {
    throw new MessageDecodeError(`${bytes.length - reader.offset} trailing bytes after the message`);
  }
  return message;
}

function readMessage(reader: Reader): Message {
  const type = reader.u8("type");
  if (!isWireMessageType(type)) throw new MessageDecodeError(`message type ${type} is not a wire message type`);
  const flags = reader.u8("flags");
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new MessageDecodeError(`unknown message flags 0x${flags.toString(16)}`);
  const group = reader.u32("group") as GroupId;
  const to = reader.id("to");
  const from = reader.id("from");
  if (to === 0n || from === 0n) throw new MessageDecodeError("message names node 0 as sender or receiver");
  const term = reader.count("term");
  const logTerm = reader.count("logTerm");
  const index = reader.count("index");
  const commit = reader.count("commit");
  const rejectHint = reader.count("rejectHint");
  const context = reader.bytes("context");
  const entries = readEntries(reader, type as MessageType, term, logTerm, index);
  const hasSnapshot = (flags & FLAG_SNAPSHOT) !== 0;
  if (hasSnapshot !== (type === MessageType.Snap)) {
    throw new MessageDecodeError(hasSnapshot ? "snapshot attached to a non-snapshot message" : "snapshot message without a snapshot");
  }
  const snapshot = hasSnapshot ? readSnapshot(reader) : null;
  return {
    type: type as MessageType, group, to, from, term, logTerm, index, entries, commit, snapshot,
    reject: (flags & FLAG_REJECT) !== 0, rejectHint, context,
  };
}

function readEntries(reader: Reader, type: MessageType, term: number, logTerm: number, index: number): Entry[] {
  const count = reader.u32("entry count");
  if (count * ENTRY_FIXED_BYTES > reader.remaining) {
    throw new MessageDecodeError(`entry count ${count} exceeds the ${reader.remaining} bytes left`);
  }
  const entries: Entry[] = new Array(count);
  let previousTerm = logTerm;
  for (let i = 0; i < count; i++) {
    const entryTerm = reader.count("entry term");
    const entryIndex = reader.count("entry index");
    const entryType = reader.u8("entry type");
    if (entryType !== EntryType.Normal && entryType !== EntryType.ConfChange) {
      throw new MessageDecodeError(`unknown entry type ${entryType}`);
    }
    const data = reader.bytes("entry data");
    // An append carries a contiguous run of the leader's log right after
    // (index, logTerm); terms in a Raft log never decrease and never exceed
    // the leader's term. The core relies on this shape, so check it here.
    if (type === MessageType.App) {
      if (entryIndex !== index + 1 + i) throw new MessageDecodeError(`append entry ${i} has index ${entryIndex}, expected ${index + 1 + i}`);
      if (entryTerm < previousTerm || entryTerm > term) {
        throw new MessageDecodeError(`append entry ${i} has term ${entryTerm} outside [${previousTerm}, ${term}]`);
      }
      previousTerm = entryTerm;
    }
    entries[i] = { term: entryTerm, index: entryIndex, type: entryType as EntryType, data };
  }
  return entries;
}

function readSnapshot(reader: Reader): Snapshot {
  const index = reader.count("snapshot index");
  const term = reader.count("snapshot term");
  const autoLeave = reader.u8("autoLeave");
  if (autoLeave > 1) throw new MessageDecodeError(`autoLeave must be 0 or 1, got ${autoLeave}`);
  const voters = reader.ids("voters");
  const votersOutgoing = reader.ids("votersOutgoing");
  const learners = reader.ids("learners");
  const learnersNext = reader.ids("learnersNext");
  const data = reader.bytes("snapshot data");
  const confState: ConfState = { voters, votersOutgoing, learners, learnersNext, autoLeave: autoLeave === 1 };
  return { metadata: { index, term, confState }, data };
}

function writeSnapshot(buffer: Buffer, offset: number, snapshot: Snapshot): number {
  const { metadata } = snapshot;
  const conf = metadata.confState;
  let at = writeCount(buffer, offset, metadata.index);
  at = writeCount(buffer, at, metadata.term);
  at = writeUint8(buffer, at, conf.autoLeave ? 1 : 0);
  at = writeIds(buffer, at, conf.voters);
  at = writeIds(buffer, at, conf.votersOutgoing);
  at = writeIds(buffer, at, conf.learners);
  at = writeIds(buffer, at, conf.learnersNext);
  return writeBytes(buffer, at, snapshot.data);
}

// Byte-level writers: Buffer's writeUInt32BE and writeBigUInt64BE range-check
// and (for bigint) allocate on every call; these fields are validated once
// by the asserts below, so plain index stores are enough.
function writeUint8(buffer: Buffer, offset: number, value: number): number {
  buffer[offset] = value;
  return offset + 1;
}

function writeUint32(buffer: Buffer, offset: number, value: number): number {
  buffer[offset] = value >>> 24;
  buffer[offset + 1] = value >>> 16;
  buffer[offset + 2] = value >>> 8;
  buffer[offset + 3] = value;
  return offset + 4;
}

function writeCount(buffer: Buffer, offset: number, value: number): number {
  // No message closure here: this runs several times per message and must not allocate.
  if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, `term/index must be a non-negative safe integer, got ${value}`);
  // Two 32-bit halves: no bigint is made for the common numeric fields.
  writeUint32(buffer, offset, Math.floor(value / TWO_TO_32));
  return writeUint32(buffer, offset + 4, value >>> 0);
}

/**
 * Splitting a bigint into words allocates; a node talks to a handful of
 * peers, so the last few ids seen are remembered with their words.
 */
const ID_CACHE_SIZE = 8;
const cachedIds: bigint[] = new Array(ID_CACHE_SIZE).fill(-1n);
const cachedHigh = new Uint32Array(ID_CACHE_SIZE);
const cachedLow = new Uint32Array(ID_CACHE_SIZE);
let cacheNext = 0;

function writeId(buffer: Buffer, offset: number, id: bigint): number {
  for (let i = 0; i < ID_CACHE_SIZE; i++) {
    if (cachedIds[i] === id) {
      writeUint32(buffer, offset, cachedHigh[i]);
      return writeUint32(buffer, offset + 4, cachedLow[i]);
    }
  }
  if (!(id >= 0n && id <= MAX_UINT64)) assert(false, `node id out of 64-bit range: ${id}`);
  const slot = cacheNext;
  cacheNext = (cacheNext + 1) % ID_CACHE_SIZE;
  cachedIds[slot] = id;
  cachedHigh[slot] = Number(id >> 32n);
  cachedLow[slot] = Number(id & 0xffff_ffffn);
  writeUint32(buffer, offset, cachedHigh[slot]);
  return writeUint32(buffer, offset + 4, cachedLow[slot]);
}

function writeIds(buffer: Buffer, offset: number, ids: readonly bigint[]): number {
  let at = writeUint32(buffer, offset, ids.length);
  for (let i = 0; i < ids.length; i++) at = writeId(buffer, at, ids[i]);
  return at;
}

function writeBytes(buffer: Buffer, offset: number, bytes: Uint8Array): number {
  const at = writeUint32(buffer, offset, bytes.length);
  if (bytes.length > 0) buffer.set(bytes, at);
  return at + bytes.length;
}

/** A bounds-checked cursor; every read that would run past the end throws MessageDecodeError. */
class Reader {
  offset = 0;

  constructor(private readonly buffer: Uint8Array) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(bytes: number, field: string): void {
    if (this.remaining < bytes) throw new MessageDecodeError(`message truncated reading ${field}`);
  }

  private word(at: number): number {
    const bytes = this.buffer;
    return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buffer[this.offset++];
  }

  u32(field: string): number {
    this.need(4, field);
    const value = this.word(this.offset);
    this.offset += 4;
    return value;
  }

  count(field: string): number {
    this.need(8, field);
    const high = this.word(this.offset);
    const low = this.word(this.offset + 4);
    this.offset += 8;
    if (high > SAFE_HIGH_WORD_MAX) throw new MessageDecodeError(`${field} exceeds 2^53 - 1`);
    return high * TWO_TO_32 + low;
  }

  id(field: string): NodeId {
    this.need(8, field);
    const high = this.word(this.offset);
    const low = this.word(this.offset + 4);
    this.offset += 8;
    return idFromWords(high, low);
  }

  ids(field: string): NodeId[] {
    const count = this.u32(`${field} count`);
    if (count * 8 > this.remaining) throw new MessageDecodeError(`${field} count ${count} exceeds the bytes left`);
    const ids: NodeId[] = new Array(count);
    for (let i = 0; i < count; i++) ids[i] = this.id(field);
    return ids;
  }

  bytes(field: string): Uint8Array {
    const length = this.u32(`${field} length`);
    if (length > this.remaining) throw new MessageDecodeError(`${field} length ${length} exceeds the ${this.remaining} bytes left`);
    if (length === 0) return EMPTY_BYTES;
    const bytes = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return bytes;
  }
}

/** Shared by every empty byte field a decoder returns (most contexts, no-op entries): a view costs an allocation. */
const EMPTY_BYTES = new Uint8Array(0);

function idFromWords(high: number, low: number): NodeId {
  for (let i = 0; i < ID_CACHE_SIZE; i++) {
    if (cachedHigh[i] === high && cachedLow[i] === low && cachedIds[i] >= 0n) return cachedIds[i] as NodeId;
  }
  const id = (BigInt(high) << 32n) | BigInt(low);
  const slot = cacheNext;
  cacheNext = (cacheNext + 1) % ID_CACHE_SIZE;
  cachedIds[slot] = id;
  cachedHigh[slot] = high;
  cachedLow[slot] = low;
  return id as NodeId;
}
