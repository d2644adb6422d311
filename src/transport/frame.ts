/**
 * Frames: the unit every transport connection carries.
 *
 *   u32 payload length (big-endian, excluding this 5-byte header)
 *   u8  frame type
 *   payload
 *
 * The decoder is a push-style state machine (nats.js, Deno std): feed it any
 * chunking of the byte stream and it hands out whole frames. It checks the
 * type and the length as soon as the 5 header bytes are in, before buffering
 * any payload, so a hostile or confused peer can make it hold at most
 * `payloadBytesMax + 4` bytes, and only bytes that actually arrived (it never
 * pre-allocates what a header merely claims).
 */
import { assert } from "../lib/assert.js";
import { DecoderFailedError, FrameTooLargeError, UnknownFrameTypeError } from "./errors.js";

export const FRAME_HEADER_BYTES = 5;

export const FrameType = {
  /** Dialer → listener: who I am, who I expect you to be, what this connection is for. */
  Hello: 1,
  /** Listener → dialer: handshake accepted, here is who I am. */
  Accept: 2,
  /** Either side, then close: why the connection is refused. */
  Refuse: 3,
  /** One encoded Raft message. */
  Message: 4,
  /** Snapshot connection: the Snap message (metadata only) that starts the stream. */
  SnapshotHeader: 5,
  /** Snapshot connection: a piece of the snapshot's data. */
  SnapshotChunk: 6,
  /** Snapshot connection: total length and CRC32C of all chunks. */
  SnapshotEnd: 7,
  /** Snapshot receiver → sender: installed (or not, with a reason). */
  SnapshotResult: 8,
  /** Listener → a joining member: who the cluster is (opaque to the transport). */
  Discovery: 9,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const FRAME_TYPE_MAX = FrameType.Discovery;

export function isFrameType(value: number): value is FrameType {
  return value >= FrameType.Hello && value <= FRAME_TYPE_MAX;
}

export function writeFrameHeader(buffer: Buffer, offset: number, type: FrameType, payloadBytes: number): number {
  assert(payloadBytes >= 0 && payloadBytes <= 0xffff_ffff, "frame payload length out of u32 range");
  buffer.writeUInt32BE(payloadBytes, offset);
  buffer.writeUInt8(type, offset + 4);
  return offset + FRAME_HEADER_BYTES;
}

/** A whole frame (header and payload) in one new buffer. */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  const buffer = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(buffer, 0, type, payload.length);
  buffer.set(payload, FRAME_HEADER_BYTES);
  return buffer;
}

export type FrameHandler = (type: FrameType, payload: Buffer) => void;

/**
 * Push-style frame decoder. `push()` calls `onFrame` for every frame completed
 * by the bytes pushed, in order, and throws FrameTooLargeError or
 * UnknownFrameTypeError at the first bad header; after that the decoder is
 * failed and every later push throws DecoderFailedError (the connection must
 * be closed: the stream has lost its framing).
 *
 * Payload buffers handed out are never reused by the decoder: a payload that
 * sits inside one pushed chunk is a view of that chunk, otherwise a fresh
 * buffer. Decoded messages may keep views into them, so pushed chunks must
 * not be modified afterwards (socket chunks never are).
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private frameType: FrameType = FrameType.Hello;
  /** Payload length of the frame being assembled, or -1 while reading a header. */
  private payloadBytes = -1;
  private readonly parts: Buffer[] = [];
  private partsBytes = 0;
  private failure: Error | null = null;

  constructor(private payloadBytesMax: number, private readonly onFrame: FrameHandler) {
    assert(Number.isSafeInteger(payloadBytesMax) && payloadBytesMax >= 0, "frame cap must be a non-negative integer");
  }

  /** Changes the cap for frames whose header has not been read yet (e.g. raised once a handshake succeeds). */
  setPayloadBytesMax(payloadBytesMax: number): void {
    assert(Number.isSafeInteger(payloadBytesMax) && payloadBytesMax >= 0, "frame cap must be a non-negative integer");
    this.payloadBytesMax = payloadBytesMax;
  }

  /** Bytes held for a frame not yet complete (never more than the cap plus a header). */
  get bufferedBytes(): number {
    return this.headerFilled + this.partsBytes;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  push(chunk: Buffer): void {
    if (this.failure !== null) throw new DecoderFailedError("frame decoder already failed", { cause: this.failure });
    let at = 0;
    // halt() from inside onFrame stops the loop: the rest of the chunk is dropped.
    while (at < chunk.length && this.failure === null) {
      at = this.payloadBytes < 0 ? this.readHeader(chunk, at) : this.readPayload(chunk, at);
    }
  }

  /** Stops decoding for good (the connection is closing); frames still inside a pushed chunk are not delivered. */
  halt(): void {
    if (this.failure === null) this.failure = new DecoderFailedError("frame decoder halted");
    this.parts.length = 0;
    this.partsBytes = 0;
  }

  private readHeader(chunk: Buffer, at: number): number {
    const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - at);
    chunk.copy(this.header, this.headerFilled, at, at + take);
    this.headerFilled += take;
    if (this.headerFilled < FRAME_HEADER_BYTES) return at + take;
    const payloadBytes = this.header.readUInt32BE(0);
    const type = this.header.readUInt8(4);
    if (!isFrameType(type)) this.fail(new UnknownFrameTypeError(type));
    if (payloadBytes > this.payloadBytesMax) this.fail(new FrameTooLargeError(payloadBytes, this.payloadBytesMax));
    this.frameType = type as FrameType;
    this.payloadBytes = payloadBytes;
    this.headerFilled = 0;
    // A zero-length payload is complete as soon as its header is.
    if (payloadBytes === 0) this.emit(Buffer.alloc(0));
    return at + take;
  }

  private readPayload(chunk: Buffer, at: number): number {
    const missing = this.payloadBytes - this.partsBytes;
    const available = chunk.length - at;
    if (this.partsBytes === 0 && available >= missing) {
      this.emit(chunk.subarray(at, at + missing));
      return at + missing;
    }
    const take = Math.min(missing, available);
    this.parts.push(chunk.subarray(at, at + take));
    this.partsBytes += take;
    if (this.partsBytes === this.payloadBytes) {
      const payload = Buffer.concat(this.parts, this.partsBytes);
      this.parts.length = 0;
      this.partsBytes = 0;
      this.emit(payload);
    }
    return at + take;
  }

  private emit(payload: Buffer): void {
    const type = this.frameType;
    this.payloadBytes = -1;
    this.onFrame(type, payload);
  }

  private fail(error: Error): never {
    this.failure = error;
    this.parts.length = 0;
    this.partsBytes = 0;
    this.headerFilled = 0;
    throw error;
  }
}
