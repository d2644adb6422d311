import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { ProtobufDecodeError, ProtoReader, ProtoWriter, WireType } from "./wire.js";

function reader(...bytes: number[]): ProtoReader {
  return new ProtoReader(Uint8Array.from(bytes));
}

describe("ProtoReader", () => {
  it("reads every safe int64 number written by ProtoWriter, negatives included", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (value) => {
        const writer = new ProtoWriter();
        writer.int64Number(value);
        const read = new ProtoReader(writer.finish());
        expect(read.int64Number()).toBe(value);
        expect(read.position).toBe(writer.length);
      }),
      { numRuns: 2000 },
    );
  });

  it("reads every 64-bit bigint written by ProtoWriter, signed and unsigned", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }), (value) => {
        const writer = new ProtoWriter();
        writer.int64Bigint(value);
        expect(new ProtoReader(writer.finish()).uint64Bigint()).toBe(BigInt.asUintN(64, value));
        expect(new ProtoReader(writer.finish()).int64Bigint()).toBe(BigInt.asIntN(64, value));
      }),
      { numRuns: 2000 },
    );
  });

  it("saturates int64 numbers beyond 2^53 instead of returning a wrong value", () => {
    const big = new ProtoWriter();
    big.int64Bigint(1n << 60n);
    expect(new ProtoReader(big.finish()).int64Number()).toBe(Number.MAX_SAFE_INTEGER);
    const small = new ProtoWriter();
    small.int64Bigint(-(1n << 60n));
    expect(new ProtoReader(small.finish()).int64Number()).toBe(-Number.MAX_SAFE_INTEGER);
  });

  it("rejects a truncated varint", () => {
    expect(() => reader(0x80, 0x80).int64Number()).toThrow(/truncated varint/);
    expect(() => reader(0xff).uint32()).toThrow(ProtobufDecodeError);
  });

  it("rejects a varint longer than 10 bytes or wider than 64 bits", () => {
    expect(() => reader(...Array<number>(10).fill(0xff), 0x01).int64Number()).toThrow(/malformed varint/);
    expect(() => reader(...Array<number>(9).fill(0xff), 0x02).int64Number()).toThrow(/more than 64 bits/);
    expect(() => reader(...Array<number>(10).fill(0xff), 0x01).uint32()).toThrow(/longer than 10 bytes/);
  });

  it("accepts the 10-byte varint of -1 for a 32-bit read, as protobuf requires", () => {
    expect(reader(...Array<number>(9).fill(0xff), 0x01).uint32()).toBe(0xffff_ffff);
  });

  it("rejects a length-delimited field running past the end of the message", () => {
    const read = reader((1 << 3) | WireType.lengthDelimited, 10, 1, 2, 3);
    expect(read.nextField()).toBe(true);
    expect(() => read.bytesField()).toThrow(/10 bytes runs past the end/);
  });

  it("rejects groups and unknown wire types when skipping", () => {
    const group = reader((1 << 3) | WireType.startGroup);
    group.nextField();
    expect(() => group.skip()).toThrow(/unsupported wire type 3/);
    const seven = reader((1 << 3) | 7);
    seven.nextField();
    expect(() => seven.skip()).toThrow(/unsupported wire type 7/);
  });

  it("rejects field number zero", () => {
    expect(() => reader(0x00, 0x01).nextField()).toThrow(/field number 0/);
  });

  it("skips unknown fixed32, fixed64 and length-delimited fields", () => {
    const read = reader((9 << 3) | WireType.fixed32, 1, 2, 3, 4, (10 << 3) | WireType.fixed64, 1, 2, 3, 4, 5, 6, 7, 8, (11 << 3) | WireType.lengthDelimited, 1, 9);
    let fields = 0;
    while (read.nextField()) {
      read.skip();
      fields++;
    }
    expect(fields).toBe(3);
  });

  it("rejects a truncated fixed64 field", () => {
    const read = reader((9 << 3) | WireType.fixed64, 1, 2, 3);
    read.nextField();
    expect(() => read.skip()).toThrow(/truncated 8-byte fixed field/);
  });
});

describe("ProtoWriter", () => {
  it("moves a submessage body when its length needs more than one byte", () => {
    const writer = new ProtoWriter(5);
    const marker = writer.beginLengthDelimited(2);
    writer.bytesField(1, Buffer.alloc(20_000, 3));
    writer.endLengthDelimited(marker);
    const read = new ProtoReader(writer.finish());
    expect(read.nextField()).toBe(true);
    const inner = read.messageField();
    expect(inner.nextField()).toBe(true);
    expect(inner.bytesField()).toEqual(Buffer.alloc(20_000, 3));
    expect(read.nextField()).toBe(false);
    expect(writer.finishWithPrefix().length).toBe(writer.length + 5);
  });

  it("refuses to encode a number that is not a safe integer", () => {
    expect(() => new ProtoWriter().int64Number(2 ** 60)).toThrow(/not a safe integer/);
    expect(() => new ProtoWriter().int64Number(1.5)).toThrow(/not a safe integer/);
  });
});
