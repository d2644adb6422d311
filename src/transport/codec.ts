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
import type { GroupId, NodeId } from "../lib/ids.js";
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
  assert(isWireMessageType(message.type), () => `message type ${message.type} does not travel between nodes`);
  let at = offset;
  at = buffer.writeUInt8(message.type, at);
  at = buffer.writeUInt8((message.reject ? FLAG_REJECT : 0) | (message.snapshot !== null ? FLAG_SNAPSHOT : 0), at);
  at = buffer.writeUInt32BE(message.group, at);
  at = writeId(buffer, at, message.to);
  at = writeId(buffer, at, message.from);
  at = writeCount(buffer, at, message.term);
  at = writeCount(buffer, at, message.logTerm);
  at = writeCount(buffer, at, message.index);
  at = writeCount(buffer, at, message.commit);
  at = writeCount(buffer, at, message.rejectHint);
  at = writeBytes(buffer, at, message.context);
  const entries = message.entries;
  at = buffer.writeUInt32BE(entries.length, at);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    at = writeCount(buffer, at, entry.term);
    at = writeCount(buffer, at, entry.index);
    at = buffer.writeUInt8(entry.type, at);
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
  at = buffer.writeUInt8(conf.autoLeave ? 1 : 0, at);
  at = writeIds(buffer, at, conf.voters);
  at = writeIds(buffer, at, conf.votersOutgoing);
  at = writeIds(buffer, at, conf.learners);
  at = writeIds(buffer, at, conf.learnersNext);
  return writeBytes(buffer, at, snapshot.data);
}

function writeCount(buffer: Buffer, offset: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, () => `term/index must be a non-negative safe integer, got ${value}`);
  // Two 32-bit halves: no bigint is made for the common numeric fields.
  buffer.writeUInt32BE(Math.floor(value / TWO_TO_32), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
  return offset + 8;
}

function writeId(buffer: Buffer, offset: number, id: bigint): number {
  // writeBigUInt64BE range-checks: a negative or >64-bit id throws.
  return buffer.writeBigUInt64BE(id, offset);
}

function writeIds(buffer: Buffer, offset: number, ids: readonly bigint[]): number {
  let at = buffer.writeUInt32BE(ids.length, offset);
  for (let i = 0; i < ids.length; i++) at = writeId(buffer, at, ids[i]);
  return at;
}

function writeBytes(buffer: Buffer, offset: number, bytes: Uint8Array): number {
  const at = buffer.writeUInt32BE(bytes.length, offset);
  buffer.set(bytes, at);
  return at + bytes.length;
}

/** A bounds-checked cursor; every read that would run past the end throws MessageDecodeError. */
class Reader {
  offset = 0;
  private readonly view: DataView;

  constructor(private readonly buffer: Uint8Array) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(bytes: number, field: string): void {
    if (this.remaining < bytes) throw new MessageDecodeError(`message truncated reading ${field}`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.offset++);
  }

  u32(field: string): number {
    this.need(4, field);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  count(field: string): number {
    this.need(8, field);
    const high = this.view.getUint32(this.offset);
    const low = this.view.getUint32(this.offset + 4);
    this.offset += 8;
    if (high > SAFE_HIGH_WORD_MAX) throw new MessageDecodeError(`${field} exceeds 2^53 - 1`);
    return high * TWO_TO_32 + low;
  }

  id(field: string): NodeId {
    this.need(8, field);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return value as NodeId;
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
    const bytes = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return bytes;
  }
}
