import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../lib/assert.js";
import { groupId, MAX_UINT64, nodeId, type NodeId } from "../lib/ids.js";
import { EntryType, MessageType, type Entry, type Message } from "../raft/types.js";
import { decodeMessage, encodedMessageBytes, encodeMessage, encodeMessageInto, isWireMessageType, MESSAGE_FIXED_BYTES } from "./codec.js";
import { MessageDecodeError } from "./errors.js";
import { makeEntries, makeMessage, NODE_1, NODE_2 } from "./test-helpers.js";

const WIRE_TYPES = Object.values(MessageType).filter(isWireMessageType);

function snapshotMessage(): Message {
  return makeMessage({
    type: MessageType.Snap, to: NODE_2, from: NODE_1, term: 9, commit: 120,
    snapshot: {
      metadata: {
        index: 120, term: 8,
        confState: {
          voters: [NODE_1, NODE_2, nodeId(MAX_UINT64)], votersOutgoing: [NODE_1], learners: [nodeId(7)],
          learnersNext: [nodeId(8)], autoLeave: true,
        },
      },
      data: new Uint8Array([1, 2, 3, 4, 5]),
    },
  });
}

function appendMessage(): Message {
  return makeMessage({
    type: MessageType.App, to: NODE_2, from: NODE_1, term: 7, logTerm: 6, index: 41, commit: 40,
    entries: [...makeEntries(42, 6, 2, 10), { term: 7, index: 44, type: EntryType.ConfChange, data: new Uint8Array([9]) }],
    context: new Uint8Array([0xaa, 0xbb]),
  });
}

/** Compares field by field, turning byte views into plain arrays so views and copies compare equal. */
function normalize(message: Message): unknown {
  const bytes = (value: Uint8Array): number[] => Array.from(value);
  return {
    ...message,
    context: bytes(message.context),
    entries: message.entries.map((entry: Entry) => ({ ...entry, data: bytes(entry.data) })),
    snapshot: message.snapshot === null ? null : { ...message.snapshot, data: bytes(message.snapshot.data) },
  };
}

describe("message codec", () => {
  it("round-trips every wire message type", () => {
    for (const type of WIRE_TYPES) {
      const message = type === MessageType.Snap ? snapshotMessage() : makeMessage({
        type, to: NODE_2, from: NODE_1, term: 3, logTerm: 2, index: 10, commit: 9, reject: true, rejectHint: 5,
        context: new Uint8Array([1, 2, 3]),
      });
      const encoded = encodeMessage(message);
      expect(encoded.length).toBe(encodedMessageBytes(message));
      expect(normalize(decodeMessage(encoded))).toEqual(normalize(message));
    }
  });

  it("round-trips an append with entries, a context and the largest ids and terms", () => {
    const message = { ...appendMessage(), to: nodeId(MAX_UINT64), from: nodeId(1n), group: groupId(0xffff_ffff) };
    expect(normalize(decodeMessage(encodeMessage(message)))).toEqual(normalize(message));
    const huge = makeMessage({ type: MessageType.Heartbeat, to: NODE_2, from: NODE_1, term: Number.MAX_SAFE_INTEGER, commit: 2 ** 40 + 3 });
    expect(normalize(decodeMessage(encodeMessage(huge)))).toEqual(normalize(huge));
  });

  it("keeps 64-bit node ids exact where a number would lose the low bits", () => {
    const to = nodeId(0xffff_ffff_ffff_fffen);
    const decoded = decodeMessage(encodeMessage(makeMessage({ to, from: NODE_1 })));
    expect(decoded.to).toBe(0xffff_ffff_ffff_fffen);
    expect(decoded.from).toBe(NODE_1);
  });

  it("encodes many messages back to back into one buffer", () => {
    const messages = Array.from({ length: 100 }, (_, i) =>
      i % 3 === 0 ? appendMessage() : makeMessage({ to: NODE_2, from: NODE_1, term: i, commit: i }));
    const sizes = messages.map(encodedMessageBytes);
    const buffer = Buffer.alloc(sizes.reduce((sum, size) => sum + size, 0));
    let offset = 0;
    for (const message of messages) offset = encodeMessageInto(message, buffer, offset);
    expect(offset).toBe(buffer.length);
    let at = 0;
    messages.forEach((message, i) => {
      expect(normalize(decodeMessage(buffer.subarray(at, at + sizes[i])))).toEqual(normalize(message));
      at += sizes[i];
    });
  });

  it("round-trips arbitrary messages (property)", () => {
    const id = fc.bigInt({ min: 1n, max: MAX_UINT64 }).map((value) => value as NodeId);
    const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
    const bytes = fc.uint8Array({ maxLength: 40 });
    const ids = fc.array(id, { maxLength: 4 });
    const message = fc.record({
      type: fc.constantFrom(...WIRE_TYPES.filter((type) => type !== MessageType.App && type !== MessageType.Snap)),
      group: fc.nat({ max: 0xffff_ffff }), to: id, from: id, term: count, logTerm: count, index: count, commit: count,
      reject: fc.boolean(), rejectHint: count, context: bytes,
      entries: fc.array(fc.record({ term: count, index: count, type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data: bytes }), { maxLength: 5 }),
    }).map((fields) => makeMessage({ ...fields, group: groupId(fields.group) }));
    const snapshot = fc.record({
      term: count, index: count, to: id, from: id, voters: ids, votersOutgoing: ids, learners: ids, learnersNext: ids,
      autoLeave: fc.boolean(), data: bytes,
    }).map(({ term, index, to, from, data, autoLeave, ...conf }) => makeMessage({
      type: MessageType.Snap, to, from, term,
      snapshot: { metadata: { index, term, confState: { ...conf, autoLeave } }, data },
    }));
    fc.assert(fc.property(fc.oneof(message, snapshot), (value) => {
      const encoded = encodeMessage(value);
      expect(encoded.length).toBe(encodedMessageBytes(value));
      expect(normalize(decodeMessage(encoded))).toEqual(normalize(value));
    }), { numRuns: 300 });
  });

  it("refuses to encode a message type that never leaves a node", () => {
    for (const type of [MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum]) {
      expect(() => encodeMessage(makeMessage({ type, to: NODE_2, from: NODE_1 }))).toThrow(AssertionError);
    }
  });
});

describe("message decoder on bad input", () => {
  const valid = [appendMessage(), snapshotMessage()].map(encodeMessage);

  it("rejects every truncation of a valid message with a MessageDecodeError", () => {
    for (const encoded of valid) {
      for (let length = 0; length < encoded.length; length++) {
        expect(() => decodeMessage(encoded.subarray(0, length)), `prefix of ${length} bytes`).toThrow(MessageDecodeError);
      }
    }
  });

  it("rejects trailing bytes after a message", () => {
    const encoded = Buffer.concat([valid[0], Buffer.from([0])]);
    expect(() => decodeMessage(encoded)).toThrow(/trailing/);
  });

  /** Patches a freshly encoded append message and expects the decoder to name the problem. */
  function rejectsPatched(patch: (buffer: Buffer) => void, reason: RegExp, base: Message = appendMessage()): void {
    const buffer = encodeMessage(base);
    patch(buffer);
    expect(() => decodeMessage(buffer)).toThrow(MessageDecodeError);
    expect(() => decodeMessage(buffer)).toThrow(reason);
  }

  const TO_OFFSET = 6;
  const TERM_OFFSET = 22;
  const ENTRY_COUNT_OFFSET = MESSAGE_FIXED_BYTES - 4 + 2; // after the 2-byte context of appendMessage
  const FIRST_ENTRY_OFFSET = ENTRY_COUNT_OFFSET + 4;

  it("rejects unknown and local message types", () => {
    rejectsPatched((buffer) => buffer.writeUInt8(200, 0), /type 200/);
    rejectsPatched((buffer) => buffer.writeUInt8(MessageType.Hup, 0), /not a wire message type/);
  });

  it("rejects unknown flags, node 0 and terms beyond 2^53", () => {
    rejectsPatched((buffer) => buffer.writeUInt8(0x80, 1), /flags/);
    rejectsPatched((buffer) => buffer.writeBigUInt64BE(0n, TO_OFFSET), /node 0/);
    rejectsPatched((buffer) => buffer.writeUInt32BE(0x20_0000, TERM_OFFSET), /2\^53/);
  });

  it("rejects an entry count larger than the bytes present", () => {
    rejectsPatched((buffer) => buffer.writeUInt32BE(0xffff_ffff, ENTRY_COUNT_OFFSET), /entry count/);
  });

  it("rejects an unknown entry type and an append whose entries do not follow its index", () => {
    rejectsPatched((buffer) => buffer.writeUInt8(9, FIRST_ENTRY_OFFSET + 16), /entry type 9/);
    rejectsPatched((buffer) => buffer.writeUInt32BE(43, FIRST_ENTRY_OFFSET + 12), /index 43, expected 42/);
    rejectsPatched((buffer) => buffer.writeUInt32BE(8, FIRST_ENTRY_OFFSET + 4), /term 8 outside/);
  });

  it("rejects a snapshot on a message that is not Snap, and Snap without one", () => {
    rejectsPatched((buffer) => buffer.writeUInt8(MessageType.Heartbeat, 0), /snapshot attached/, snapshotMessage());
    rejectsPatched((buffer) => buffer.writeUInt8(0, 1), /without a snapshot/, snapshotMessage());
  });

  it("rejects a byte field longer than the message", () => {
    rejectsPatched((buffer) => buffer.writeUInt32BE(1_000_000, MESSAGE_FIXED_BYTES - 8), /context length/);
  });

  it("never throws anything but MessageDecodeError on random bytes (property)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeMessage(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(MessageDecodeError);
      }
    }), { numRuns: 2000 });
  });

  it("never throws anything but MessageDecodeError when valid messages are mutated (property)", () => {
    fc.assert(fc.property(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
      (encoded, mutations) => {
        const buffer = Buffer.from(encoded);
        for (const [at, value] of mutations) buffer[at % buffer.length] = value;
        try {
          const message = decodeMessage(buffer);
          expect(encodeMessage(message).length).toBe(buffer.length);
        } catch (error) {
          expect(error).toBeInstanceOf(MessageDecodeError);
        }
      }), { numRuns: 2000 });
  });
});
