/**
 * Push-style parser of gRPC's length-prefixed messages: 1 byte compressed
 * flag, 4 bytes big-endian length, then the message. Chunks arrive as HTTP/2
 * delivers them (a message may span chunks, a chunk may hold many messages).
 * The declared length is checked against the limit before a single body byte
 * is buffered, so a hostile length never makes the server allocate.
 */
import { assert } from "../../lib/assert.js";

export const FRAME_HEADER_BYTES = 5;

/** A message larger than the receive limit (answered RESOURCE_EXHAUSTED). */
export class MessageTooLargeError extends Error {
  override name = "MessageTooLargeError";
  constructor(
    readonly messageBytes: number,
    readonly messageBytesMax: number,
  ) {
    // The wording grpc-go uses, which etcd clients already show to people.
    super(`grpc: received message larger than max (${messageBytes} vs. ${messageBytesMax})`);
  }
}

/** A compressed-flag byte other than 0 or 1. */
export class MalformedFrameError extends Error {
  override name = "MalformedFrameError";
}

export type MessageSink = (compressed: boolean, body: Uint8Array) => void;

export class GrpcMessageParser {
  /** Only for a header split across chunks; allocated on first need (most calls never need it). */
  private header: Buffer | undefined;
  private headerFilled = 0;
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private compressed = false;

  constructor(private readonly messageBytesMax: number) {
    assert(Number.isSafeInteger(messageBytesMax) && messageBytesMax > 0, "messageBytesMax must be a positive integer");
  }

  /** True when bytes of an unfinished message are buffered (a stream ending now is truncated). */
  get midMessage(): boolean {
    return this.headerFilled > 0;
  }

  /** Describes the unfinished message, for the error a truncated stream gets. */
  describePending(): string {
    if (this.headerFilled < FRAME_HEADER_BYTES) return `${this.headerFilled} of ${FRAME_HEADER_BYTES} header bytes`;
    return `${this.bodyFilled} of ${this.body?.length ?? 0} message bytes`;
  }

  /** Feeds a chunk; calls `sink` once per complete message. Throws on a malformed or oversized frame. */
  push(chunk: Uint8Array, sink: MessageSink): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: a whole header in this chunk, and maybe the whole body (no copy).
        const length = this.readHeader(chunk, offset);
        offset += FRAME_HEADER_BYTES;
        if (end - offset >= length) {
          sink(this.compressed, chunk.subarray(offset, offset + length));
          offset += length;
          continue;
        }
        this.headerFilled = FRAME_HEADER_BYTES;
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
        continue;
      }
      if (this.headerFilled < FRAME_HEADER_BYTES) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, end - offset);
        this.header ??= Buffer.allocUnsafe(FRAME_HEADER_BYTES);
        this.header.set(chunk.subarray(offset, offset + take), this.headerFilled);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < FRAME_HEADER_BYTES) return;
        const length = this.readHeader(this.header, 0);
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
        if (length === 0) this.complete(sink);
        continue;
      }
      const body = this.body;
      assert(body !== undefined, "a parsed header always allocates a body");
      const take = Math.min(body.length - this.bodyFilled, end - offset);
      body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
      this.bodyFilled += take;
      offset += take;
      if (this.bodyFilled === body.length) this.complete(sink);
    }
  }

  private readHeader(bytes: Uint8Array, at: number): number {
    const flag = bytes[at];
    if (flag > 1) {
      this.headerFilled = 0;
      throw new MalformedFrameError(`grpc: invalid compressed-flag byte ${flag} in message header`);
    }
    this.compressed = flag === 1;
    const length = ((bytes[at + 1] << 24) >>> 0) + (bytes[at + 2] << 16) + (bytes[at + 3] << 8) + bytes[at + 4];
    if (length > this.messageBytesMax) {
      this.headerFilled = 0;
      throw new MessageTooLargeError(length, this.messageBytesMax);
    }
    return length;
  }

  private complete(sink: MessageSink): void {
    const body = this.body;
    assert(body !== undefined && this.bodyFilled === body.length, "complete() needs a full body");
    this.body = undefined;
    this.headerFilled = 0;
    this.bodyFilled = 0;
    sink(this.compressed, body);
  }
}
