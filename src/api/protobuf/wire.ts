/**
 * The protobuf wire format, by hand: a growable writer and a validating
 * reader. The precompiled codecs of the hot RPCs are built on these two
 * classes instead of a reflection-driven library, because on the request path
 * every microsecond of CPU is a microsecond the server does not spend on Raft.
 *
 * Numbers: protobuf int64/uint64 travel as up to 10-byte varints. Revisions,
 * counts and terms are JavaScript numbers (they stay below 2^53); ids (lease,
 * member, cluster) are bigint. The reader decodes both exactly; a number field
 * whose value lies outside the safe-integer range saturates at
 * ±Number.MAX_SAFE_INTEGER, which keeps its meaning for every field Cairn has
 * (a revision that far out is a future revision, a limit that big is no limit).
 */
import { assert } from "../../lib/assert.js";

export const WireType = {
  varint: 0,
  fixed64: 1,
  lengthDelimited: 2,
  startGroup: 3,
  endGroup: 4,
  fixed32: 5,
} as const;

/** A message that is not valid protobuf, or not the message it claims to be. */
export class ProtobufDecodeError extends Error {
  override name = "ProtobufDecodeError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const TWO_POW_32 = 0x1_0000_0000;
const INITIAL_CAPACITY_BYTES = 256;

/**
 * Appends fields to a growable buffer. Length-delimited submessages are
 * written in place: `beginLengthDelimited` reserves one byte for the length,
 * `endLengthDelimited` patches it and moves the body when the length needs
 * more than one byte (a memmove, cheaper than sizing every submessage twice).
 */
export class ProtoWriter {
  private buffer: Buffer;
  private position: number;
  private readonly start: number;

  /** `reserveBytes` leaves room at the front, e.g. for the 5-byte gRPC frame prefix. */
  constructor(reserveBytes = 0, capacityBytes = INITIAL_CAPACITY_BYTES) {
    this.buffer = Buffer.allocUnsafe(Math.max(capacityBytes, reserveBytes + 16));
    this.position = reserveBytes;
    this.start = reserveBytes;
  }

  get length(): number {
    return this.position - this.start;
  }

  /** The written bytes, reserved prefix included, as a view of the internal buffer. */
  finishWithPrefix(): Buffer {
    return this.buffer.subarray(0, this.position);
  }

  /** The written bytes (without the reserved prefix), as a view of the internal buffer. */
  finish(): Buffer {
    return this.buffer.subarray(this.start, this.position);
  }

  private ensure(extraBytes: number): void {
    const needed = this.position + extraBytes;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.position);
    this.buffer = grown;
  }

  tag(fieldNumber: number, wireType: number): void {
    this.uint32((fieldNumber << 3) | wireType);
  }

  /** An unsigned 32-bit varint. */
  uint32(value: number): void {
    this.ensure(5);
    const buffer = this.buffer;
    let position = this.position;
    let remaining = value >>> 0;
    while (remaining > 0x7f) {
      buffer[position++] = (remaining & 0x7f) | 0x80;
      remaining >>>= 7;
    }
    buffer[position++] = remaining;
    this.position = position;
  }

  /** A varint from its two 32-bit halves (two's complement for negatives). */
  private varint64(low: number, high: number): void {
    this.ensure(10);
    const buffer = this.buffer;
    let position = this.position;
    let lowBits = low >>> 0;
    let highBits = high >>> 0;
    while (highBits !== 0 || lowBits > 0x7f) {
      buffer[position++] = (lowBits & 0x7f) | 0x80;
      lowBits = ((lowBits >>> 7) | (highBits << 25)) >>> 0;
      highBits >>>= 7;
    }
    buffer[position++] = lowBits;
    this.position = position;
  }

  /** An int64 held in a safe-integer number (negatives take 10 bytes, as protobuf requires). */
  int64Number(value: number): void {
    assert(Number.isSafeInteger(value), () => `int64 field value is not a safe integer: ${value}`);
    if (value >= 0 && value < TWO_POW_32) {
      if (value <= 0x7f) {
        this.ensure(1);
        this.buffer[this.position++] = value;
      } else this.varint64(value, 0);
      return;
    }
    if (value >= 0) {
      this.varint64(value % TWO_POW_32, Math.floor(value / TWO_POW_32));
      return;
    }
    const bits = BigInt.asUintN(64, BigInt(value));
    this.varint64(Number(bits & 0xffff_ffffn), Number(bits >> 32n));
  }

  /** A 64-bit integer held in a bigint; negatives are written in two's complement (int64). */
  int64Bigint(value: bigint): void {
    const bits = BigInt.asUintN(64, value);
    if (bits < 0x8000_0000n) {
      this.uint32(Number(bits));
      return;
    }
    this.varint64(Number(bits & 0xffff_ffffn), Number(bits >> 32n));
  }

  bool(value: boolean): void {
    this.ensure(1);
    this.buffer[this.position++] = value ? 1 : 0;
  }

  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.ensure(value.length);
    this.buffer.set(value, this.position);
    this.position += value.length;
  }

  string(value: string): void {
    const byteLength = Buffer.byteLength(value, "utf8");
    this.uint32(byteLength);
    this.ensure(byteLength);
    this.position += this.buffer.write(value, this.position, byteLength, "utf8");
  }

  /** Starts a length-delimited field body; returns the marker `endLengthDelimited` needs. */
  beginLengthDelimited(fieldNumber: number): number {
    this.tag(fieldNumber, WireType.lengthDelimited);
    this.ensure(1);
    const marker = this.position;
    this.position += 1;
    return marker;
  }

  endLengthDelimited(marker: number): void {
    const bodyStart = marker + 1;
    const length = this.position - bodyStart;
    if (length <= 0x7f) {
      this.buffer[marker] = length;
      return;
    }
    const prefixBytes = varintSize(length);
    this.ensure(prefixBytes - 1);
    this.buffer.copyWithin(marker + prefixBytes, bodyStart, this.position);
    let position = marker;
    let remaining = length;
    while (remaining > 0x7f) {
      this.buffer[position++] = (remaining & 0x7f) | 0x80;
      remaining >>>= 7;
    }
    this.buffer[position] = remaining;
    this.position += prefixBytes - 1;
  }

  /** Field helpers that skip proto3 defaults, so the output matches other encoders byte for byte. */
  int64NumberField(fieldNumber: number, value: number): void {
    if (value === 0) return;
    this.tag(fieldNumber, WireType.varint);
    this.int64Number(value);
  }

  int64BigintField(fieldNumber: number, value: bigint): void {
    if (value === 0n) return;
    this.tag(fieldNumber, WireType.varint);
    this.int64Bigint(value);
  }

  uint32Field(fieldNumber: number, value: number): void {
    if (value === 0) return;
    this.tag(fieldNumber, WireType.varint);
    this.uint32(value);
  }

  /** Enums are int32 on the wire: negatives would take 10 bytes, so they go through int64Number. */
  enumField(fieldNumber: number, value: number): void {
    if (value === 0) return;
    this.tag(fieldNumber, WireType.varint);
    this.int64Number(value);
  }

  boolField(fieldNumber: number, value: boolean): void {
    if (!value) return;
    this.tag(fieldNumber, WireType.varint);
    this.bool(true);
  }

  bytesField(fieldNumber: number, value: Uint8Array): void {
    if (value.length === 0) return;
    this.tag(fieldNumber, WireType.lengthDelimited);
    this.bytes(value);
  }

  stringField(fieldNumber: number, value: string): void {
    if (value.length === 0) return;
    this.tag(fieldNumber, WireType.lengthDelimited);
    this.string(value);
  }
}

export function varintSize(value: number): number {
  assert(value >= 0 && value < TWO_POW_32, "varintSize takes a uint32");
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}

/**
 * Reads fields from one message body. Every read is bounds-checked: a varint
 * longer than 10 bytes, a length running past the end, a group or an unknown
 * wire type is a ProtobufDecodeError, never an out-of-bounds read.
 */
export class ProtoReader {
  position: number;
  /** Tag fields of the current field, set by nextField(). */
  fieldNumber = 0;
  wireType = 0;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    assert(start >= 0 && start <= end && end <= bytes.length, "reader bounds must lie within the buffer");
    this.position = start;
  }

  /** Advances to the next field; false at the end of the message. */
  nextField(): boolean {
    if (this.position >= this.end) return false;
    const tag = this.uint32();
    this.fieldNumber = tag >>> 3;
    this.wireType = tag & 7;
    if (this.fieldNumber === 0) throw new ProtobufDecodeError(`field number 0 at offset ${this.position}`);
    return true;
  }

  private fail(what: string): never {
    throw new ProtobufDecodeError(`${what} at offset ${this.position} of a ${this.end}-byte message`);
  }

  /** Throws unless the current field has the wire type its schema says. */
  expect(wireType: number, field: string): void {
    if (this.wireType !== wireType) {
      throw new ProtobufDecodeError(`field ${field} (#${this.fieldNumber}) has wire type ${this.wireType}, expected ${wireType}`);
    }
  }

  /** A varint truncated to its low 32 bits, unsigned (tags, lengths, uint32). */
  uint32(): number {
    const bytes = this.bytes;
    let position = this.position;
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (position >= this.end) this.fail("truncated varint");
      const byte = bytes[position++];
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.position = position;
        return result >>> 0;
      }
    }
    // Byte 5 carries bits 28..31; bytes 6..10 may only continue a 64-bit value.
    if (position >= this.end) this.fail("truncated varint");
    let byte = bytes[position++];
    result |= (byte & 0x0f) << 28;
    for (let count = 5; byte >= 0x80; count++) {
      if (count >= 10) this.fail("malformed varint (longer than 10 bytes)");
      if (position >= this.end) this.fail("truncated varint");
      byte = bytes[position++];
    }
    this.position = position;
    return result >>> 0;
  }

  /** A full 64-bit varint as its two unsigned 32-bit halves. */
  private varint64(): [number, number] {
    const bytes = this.bytes;
    let position = this.position;
    let low = 0;
    let high = 0;
    for (let index = 0; index < 10; index++) {
      if (position >= this.end) this.fail("truncated varint");
      const byte = bytes[position++];
      if (index < 4) low |= (byte & 0x7f) << (7 * index);
      else if (index === 4) {
        low |= (byte & 0x0f) << 28;
        high |= (byte & 0x7f) >>> 4;
      } else {
        if (index === 9 && byte > 1) this.fail("malformed varint (more than 64 bits)");
        high |= (byte & 0x7f) << (7 * index - 32);
      }
      if (byte < 0x80) {
        this.position = position;
        return [low >>> 0, high >>> 0];
      }
    }
    this.fail("malformed varint (longer than 10 bytes)");
  }

  /** An int64 as a number, saturating outside the safe-integer range (see the file comment). */
  int64Number(): number {
    const bytes = this.bytes;
    const position = this.position;
    // Fast path: one-byte and small values, the overwhelmingly common case.
    if (position < this.end && bytes[position] < 0x80) {
      this.position = position + 1;
      return bytes[position];
    }
    const [low, high] = this.varint64();
    if (high === 0) return low;
    if (high < 0x20_0000) return high * TWO_POW_32 + low;
    if (high >= 0x8000_0000) {
      // Negative: two's complement.
      const magnitudeHigh = ~high >>> 0;
      const magnitudeLow = (~low >>> 0) + 1;
      const magnitude = magnitudeHigh * TWO_POW_32 + magnitudeLow;
      return magnitude > Number.MAX_SAFE_INTEGER ? -Number.MAX_SAFE_INTEGER : -magnitude;
    }
    return Number.MAX_SAFE_INTEGER;
  }

  /** A uint64 as a bigint. */
  uint64Bigint(): bigint {
    const [low, high] = this.varint64();
    if (high === 0) return BigInt(low);
    return (BigInt(high) << 32n) | BigInt(low);
  }

  /** An int64 as a bigint (negative when the top bit is set). */
  int64Bigint(): bigint {
    return BigInt.asIntN(64, this.uint64Bigint());
  }

  /** An enum (int32 on the wire). */
  enumValue(): number {
    const [low] = this.varint64();
    return low | 0;
  }

  bool(): boolean {
    const [low, high] = this.varint64();
    return low !== 0 || high !== 0;
  }

  /** Bounds of the next length-delimited body; advances past it. */
  lengthDelimited(): { start: number; end: number } {
    const length = this.uint32();
    const start = this.position;
    if (length > this.end - start) {
      this.fail(`length-delimited field of ${length} bytes runs past the end`);
    }
    this.position = start + length;
    return { start, end: start + length };
  }

  /** A copy of the next bytes field: decoded messages never pin the request buffer. */
  bytesCopy(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return Buffer.from(this.bytes.subarray(start, end));
  }

  string(): string {
    const { start, end } = this.lengthDelimited();
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString("utf8");
  }

  /** A reader over the next length-delimited body (an embedded message). */
  subReader(): ProtoReader {
    const { start, end } = this.lengthDelimited();
    return new ProtoReader(this.bytes, start, end);
  }

  /** Skips the current field's value, whatever its wire type. */
  skip(): void {
    switch (this.wireType) {
      case WireType.varint:
        this.varint64();
        return;
      case WireType.fixed64:
        this.advance(8);
        return;
      case WireType.lengthDelimited:
        this.lengthDelimited();
        return;
      case WireType.fixed32:
        this.advance(4);
        return;
      default:
        this.fail(`unsupported wire type ${this.wireType} (field #${this.fieldNumber})`);
    }
  }

  private advance(count: number): void {
    if (this.end - this.position < count) this.fail(`truncated ${count}-byte fixed field`);
    this.position += count;
  }

  /** Field readers that check the wire type the schema expects before reading. */
  numberField(): number {
    this.expect(WireType.varint, "int64");
    return this.int64Number();
  }

  int64BigintField(): bigint {
    this.expect(WireType.varint, "int64");
    return this.int64Bigint();
  }

  uint64BigintField(): bigint {
    this.expect(WireType.varint, "uint64");
    return this.uint64Bigint();
  }

  uint32Field(): number {
    this.expect(WireType.varint, "uint32");
    return this.uint32();
  }

  enumField(): number {
    this.expect(WireType.varint, "enum");
    return this.enumValue();
  }

  boolField(): boolean {
    this.expect(WireType.varint, "bool");
    return this.bool();
  }

  bytesField(): Uint8Array {
    this.expect(WireType.lengthDelimited, "bytes");
    return this.bytesCopy();
  }

  stringField(): string {
    this.expect(WireType.lengthDelimited, "string");
    return this.string();
  }

  messageField(): ProtoReader {
    this.expect(WireType.lengthDelimited, "message");
    return this.subReader();
  }

  /** Reads a repeated enum field, packed or not, appending to `into`. */
  repeatedEnum(into: number[]): void {
    if (this.wireType === WireType.varint) {
      into.push(this.enumValue());
      return;
    }
    this.expect(WireType.lengthDelimited, "packed enum");
    const packed = this.subReader();
    while (packed.position < packed.end) into.push(packed.enumValue());
  }
}
