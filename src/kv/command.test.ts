import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  COMMAND_CODEC_VERSION, decodeCommand, encodeCommand, TXN_NESTING_MAX, type Compare, type KvCommand, type RangeRequest,
  type RequestOp, type TxnRequest,
} from "./command.js";
import { CommandDecodeError } from "./errors.js";

const bytes = fc.uint8Array({ maxLength: 8 });
const revision = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const lease = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const range: fc.Arbitrary<RangeRequest> = fc.record({
  key: bytes, rangeEnd: bytes, limit: revision, revision, sortOrder: fc.constantFrom(0, 1, 2), sortTarget: fc.constantFrom(0, 1, 2, 3, 4),
  keysOnly: fc.boolean(), countOnly: fc.boolean(), minModRevision: revision, maxModRevision: revision, minCreateRevision: revision, maxCreateRevision: revision,
}) as fc.Arbitrary<RangeRequest>;
const put = fc.record({ key: bytes, value: bytes, lease, prevKv: fc.boolean(), ignoreValue: fc.boolean(), ignoreLease: fc.boolean() });
const deleteRange = fc.record({ key: bytes, rangeEnd: bytes, prevKv: fc.boolean() });
const compareItem = fc.record({ result: fc.constantFrom(0, 1, 2, 3), target: fc.constantFrom(0, 1, 2, 3, 4), key: bytes, rangeEnd: bytes, value: bytes, number: revision, lease }) as fc.Arbitrary<Compare>;
const { txn } = fc.letrec<{ txn: TxnRequest; op: RequestOp }>((tie) => ({
  txn: fc.record({
    compare: fc.array(compareItem, { maxLength: 3 }),
    success: fc.array(tie("op"), { maxLength: 3 }),
    failure: fc.array(tie("op"), { maxLength: 3 }),
  }),
  op: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ type: fc.constant("range" as const), request: range }),
    fc.record({ type: fc.constant("put" as const), request: put }),
    fc.record({ type: fc.constant("deleteRange" as const), request: deleteRange }),
    fc.record({ type: fc.constant("txn" as const), request: tie("txn") as fc.Arbitrary<TxnRequest> }),
  ) as fc.Arbitrary<RequestOp>,
}));
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ type: fc.constant("put" as const), request: put }),
  fc.record({ type: fc.constant("deleteRange" as const), request: deleteRange }),
  fc.record({ type: fc.constant("txn" as const), request: txn }),
  fc.record({ type: fc.constant("compact" as const), request: fc.record({ revision, physical: fc.boolean() }) }),
  fc.record({ type: fc.constant("leaseGrant" as const), request: fc.record({ id: lease, ttlSeconds: revision }) }),
  fc.record({ type: fc.constant("leaseRevoke" as const), request: fc.record({ id: lease, expiryIndex: revision }) }),
  fc.record({ type: fc.constant("leaseRenew" as const), request: fc.record({ id: lease }) }),
  fc.record({
    type: fc.constant("leaseCheckpoint" as const),
    request: fc.record({ asOfIndex: revision, checkpoints: fc.array(fc.record({ id: lease, remainingSeconds: revision }), { maxLength: 4 }) }),
  }),
);

describe("the kv command codec", () => {
  it("decodes exactly what it encoded", () => {
    fc.assert(fc.property(command, (original) => {
      expect(decodeCommand(encodeCommand(original))).toEqual(original);
    }), { numRuns: 300, seed: 42 });
  });

  it("refuses every truncation of a valid command with a typed error naming the offset", () => {
    fc.assert(fc.property(command, (original) => {
      const encoded = encodeCommand(original);
      for (let length = 0; length < encoded.length; length++) {
        expect(() => decodeCommand(encoded.subarray(0, length))).toThrow(CommandDecodeError);
      }
    }), { numRuns: 40, seed: 7 });
  });

  it("answers random garbage only with CommandDecodeError or a valid command", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
      try {
        const decoded = decodeCommand(garbage);
        expect(encodeCommand(decoded)).toEqual(garbage);
      } catch (error) {
        expect(error).toBeInstanceOf(CommandDecodeError);
      }
    }), { numRuns: 2000, seed: 3 });
  });

  it("refuses an unknown version, an unknown type, trailing bytes and bad flags with their reasons", () => {
    const valid = encodeCommand({ type: "compact", request: { revision: 5, physical: true } });
    expect(() => decodeCommand(new Uint8Array([COMMAND_CODEC_VERSION + 1, ...valid.subarray(1)]))).toThrow("cairn: invalid kv command at byte 0: unsupported codec version 2 (this build reads 1)");
    expect(() => decodeCommand(new Uint8Array([COMMAND_CODEC_VERSION, 77]))).toThrow("at byte 1: unknown command type 77");
    expect(() => decodeCommand(new Uint8Array([...valid, 0]))).toThrow("1 trailing bytes");
    const badFlag = valid.slice();
    badFlag[badFlag.length - 1] = 2;
    expect(() => decodeCommand(badFlag)).toThrow("physical must be 0 or 1, got 2");
    const huge = encodeCommand({ type: "compact", request: { revision: 0, physical: false } });
    huge.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2);
    expect(() => decodeCommand(huge)).toThrow("compact revision exceeds 2^53");
  });

  it("refuses txns nested deeper than the limit without exhausting the stack", () => {
    let request: TxnRequest = { compare: [], success: [], failure: [] };
    for (let depth = 1; depth < TXN_NESTING_MAX; depth++) request = { compare: [], success: [{ type: "txn", request }], failure: [] };
    expect(decodeCommand(encodeCommand({ type: "txn", request }))).toEqual({ type: "txn", request });
    const deeper: TxnRequest = { compare: [], success: [{ type: "txn", request }], failure: [] };
    expect(() => decodeCommand(encodeCommand({ type: "txn", request: deeper }))).toThrow(`txn nested deeper than ${TXN_NESTING_MAX}`);
  });

  it("refuses an operation count larger than the bytes that follow", () => {
    const encoded = encodeCommand({ type: "txn", request: { compare: [], success: [], failure: [] } });
    encoded.set([0x7f, 0xff, 0xff, 0xff], 6);
    expect(() => decodeCommand(encoded)).toThrow(/operation count 2147483647 exceeds the remaining bytes/);
  });
});
