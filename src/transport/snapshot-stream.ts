/**
 * Snapshots travel on a connection of their own so that a stream of hundreds
 * of megabytes never sits in front of a heartbeat. After the handshake:
 *
 *   sender → SnapshotHeader   the Snap message (metadata; its data field empty)
 *   sender → SnapshotChunk*   the data, in frames of at most chunkBytes
 *   sender → SnapshotEnd      u64 total bytes, u32 CRC32C of all the data
 *   receiver → SnapshotResult u8 ok, UTF-8 reason; then both close
 *
 * Both sides apply backpressure: the sender awaits the socket's drain before
 * writing more, and the receiver pauses the socket while its consumer is more
 * than a buffer's worth behind. The receiver answers only after the stream
 * ended and its handler finished, so "ok" means "installed".
 */
import { assert } from "../lib/assert.js";
import { crc32c } from "../lib/crc32c.js";
import { formatId, type NodeId } from "../lib/ids.js";
import { MessageType, type Message } from "../raft/types.js";
import { ChunkQueue } from "./chunk-queue.js";
import { decodeMessage, encodeMessage } from "./codec.js";
import {
  ConnectionLostError, HandshakeRefusedError, ProtocolViolationError, SnapshotCorruptError, SnapshotRejectedError, TransportClosedError,
  TransportTimeoutError,
} from "./errors.js";
import { FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from "./frame.js";
import type { FramedSocket } from "./framed-socket.js";
import { decodeRefusal } from "./handshake.js";
import type { TransportLogger } from "./logger.js";

const TWO_TO_32 = 0x1_0000_0000;
const END_BYTES = 12;
const RESULT_REASON_BYTES_MAX = 512;

export interface SnapshotResult {
  readonly ok: boolean;
  readonly reason: string;
}

export function encodeSnapshotEnd(totalBytes: number, checksum: number): Buffer {
  const buffer = Buffer.allocUnsafe(END_BYTES);
  buffer.writeUInt32BE(Math.floor(totalBytes / TWO_TO_32), 0);
  buffer.writeUInt32BE(totalBytes >>> 0, 4);
  buffer.writeUInt32BE(checksum >>> 0, 8);
  return buffer;
}

export function decodeSnapshotEnd(payload: Buffer): { totalBytes: number; checksum: number } {
  if (payload.length !== END_BYTES) throw new ProtocolViolationError(`snapshot end must be ${END_BYTES} bytes, got ${payload.length}`);
  const high = payload.readUInt32BE(0);
  if (high > 0x1f_ffff) throw new ProtocolViolationError("snapshot length exceeds 2^53 - 1");
  return { totalBytes: high * TWO_TO_32 + payload.readUInt32BE(4), checksum: payload.readUInt32BE(8) };
}

export function encodeSnapshotResult(result: SnapshotResult): Buffer {
  const reason = Buffer.from(result.reason, "utf8").subarray(0, RESULT_REASON_BYTES_MAX);
  const buffer = Buffer.allocUnsafe(1 + reason.length);
  buffer.writeUInt8(result.ok ? 1 : 0, 0);
  buffer.set(reason, 1);
  return buffer;
}

export function decodeSnapshotResult(payload: Buffer): SnapshotResult {
  if (payload.length < 1 || payload.length > 1 + RESULT_REASON_BYTES_MAX) throw new ProtocolViolationError("malformed snapshot result");
  const flag = payload.readUInt8(0);
  if (flag > 1) throw new ProtocolViolationError(`snapshot result flag must be 0 or 1, got ${flag}`);
  return { ok: flag === 1, reason: payload.toString("utf8", 1) };
}

export interface SnapshotSendOptions {
  readonly chunkBytes: number;
  readonly resultTimeoutMs: number;
  /** A receiver that takes no data for this long is given up on (its consumer hung or its socket is stuck). */
  readonly stallTimeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Streams one snapshot over an established snapshot connection and waits
 * for the receiver's verdict. Resolves with the number of data bytes sent;
 * rejects if the stream breaks, the source throws, the receiver refuses or
 * does not answer in time. The connection is closed either way. Chunks are
 * written without copying: the source must not reuse a chunk's memory.
 */
export async function sendSnapshotStream(
  connection: FramedSocket, message: Message, chunks: AsyncIterable<Uint8Array>, options: SnapshotSendOptions,
): Promise<number> {
  assert(message.type === MessageType.Snap && message.snapshot !== null, "sendSnapshotStream needs a Snap message with a snapshot");
  assert(options.chunkBytes > 0, "snapshot chunk size must be positive");
  let settle: (result: SnapshotResult | Error) => void = () => {};
  const verdict = new Promise<SnapshotResult>((resolve, reject) => {
    settle = (result) => (result instanceof Error ? reject(result) : resolve(result));
  });
  // Observed later; a failure that arrives first must not count as unhandled meanwhile.
  verdict.catch(() => {});
  let failure: Error | null = null;
  const fail = (error: Error): void => {
    if (failure === null) failure = error;
    settle(error);
  };
  connection.setFrameHandler((type, payload) => {
    if (type === FrameType.SnapshotResult) {
      const result = decodeSnapshotResult(payload);
      if (result.ok) settle(result);
      else fail(new SnapshotRejectedError(`receiver did not install the snapshot: ${result.reason}`));
    } else if (type === FrameType.Refuse) {
      const refusal = decodeRefusal(payload);
      fail(new HandshakeRefusedError(refusal.code, refusal.reason));
    } else throw new ProtocolViolationError(`snapshot receiver sent frame type ${type}`);
  });
  connection.setCloseHandler((error) => fail(error ?? new ConnectionLostError("snapshot connection closed before the receiver answered")));
  const onAbort = (): void => connection.destroy(new TransportClosedError("snapshot send aborted"));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (options.signal?.aborted) throw new TransportClosedError("snapshot send aborted");
    const header = { ...message, snapshot: { metadata: message.snapshot.metadata, data: new Uint8Array(0) } };
    connection.writeFrame(FrameType.SnapshotHeader, encodeMessage(header));
    let totalBytes = 0;
    let checksum = 0;
    for await (const chunk of chunks) {
      for (let start = 0; start < chunk.length; start += options.chunkBytes) {
        if (failure !== null) throw failure;
        const piece = chunk.subarray(start, Math.min(chunk.length, start + options.chunkBytes));
        checksum = crc32c(piece, checksum);
        totalBytes += piece.length;
        if (!writeChunk(connection, piece)) await drainOrGiveUp(connection, options.stallTimeoutMs);
      }
      if (failure !== null) throw failure;
    }
    connection.writeFrame(FrameType.SnapshotEnd, encodeSnapshotEnd(totalBytes, checksum));
    connection.startTimer(options.resultTimeoutMs, () =>
      connection.destroy(new TransportTimeoutError(`no answer to the snapshot within ${options.resultTimeoutMs} ms`)));
    await verdict;
    return totalBytes;
  } catch (error) {
    // A write that failed because the receiver already said why is better reported with the receiver's reason.
    throw failure ?? error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    connection.destroy();
  }
}

async function drainOrGiveUp(connection: FramedSocket, stallTimeoutMs: number): Promise<void> {
  const cancel = connection.startTimer(stallTimeoutMs, () =>
    connection.destroy(new TransportTimeoutError(`snapshot receiver took no data for ${stallTimeoutMs} ms`)));
  try {
    await connection.waitForDrain();
  } finally {
    cancel();
  }
}

function writeChunk(connection: FramedSocket, piece: Uint8Array): boolean {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(header, 0, FrameType.SnapshotChunk, piece.length);
  // Corked, the header and the data leave in one writev without copying the data.
  connection.socket.cork();
  connection.write(header);
  const ok = connection.write(piece);
  connection.socket.uncork();
  return ok;
}

export interface SnapshotReceiveContext {
  readonly localNodeId: NodeId;
  readonly peer: NodeId;
  readonly bufferBytesMax: number;
  /** A consumer that takes no data for this long while the socket is paused is given up on. */
  readonly stallTimeoutMs: number;
  readonly graceMs: number;
  readonly logger: TransportLogger;
  readonly onSnapshot: (message: Message, data: AsyncIterable<Uint8Array>) => Promise<void>;
  readonly onDone: (ok: boolean) => void;
}

/**
 * Takes over an accepted snapshot connection: hands the Snap message and an
 * async iterable of its data to `onSnapshot`, verifies length and checksum,
 * and answers the sender once both the stream and the handler are done.
 */
export function receiveSnapshotStream(connection: FramedSocket, context: SnapshotReceiveContext): void {
  let queue: ChunkQueue | null = null;
  let totalBytes = 0;
  let checksum = 0;
  /** null while the stream runs; then whether it arrived whole. */
  let streamOutcome: Error | "complete" | null = null;
  let handlerOutcome: Error | "complete" | null = null;
  let answered = false;
  const peer = formatId(context.peer);
  let cancelStallTimer: (() => void) | null = null;
  const pause = (): void => {
    connection.socket.pause();
    // A paused socket does not even notice the sender hanging up, so a hung consumer needs a clock of its own.
    cancelStallTimer ??= connection.startTimer(context.stallTimeoutMs, () => {
      const error = new TransportTimeoutError(`snapshot consumer took no data for ${context.stallTimeoutMs} ms`);
      queue?.fail(error);
      connection.destroy(error);
    });
  };
  const resume = (): void => {
    cancelStallTimer?.();
    cancelStallTimer = null;
    connection.socket.resume();
  };

  const answer = (): void => {
    if (answered || connection.closed) return;
    let result: SnapshotResult | null = null;
    if (handlerOutcome instanceof Error) result = { ok: false, reason: handlerOutcome.message };
    else if (streamOutcome instanceof Error) result = { ok: false, reason: streamOutcome.message };
    else if (handlerOutcome === "complete" && streamOutcome === "complete") result = { ok: true, reason: "" };
    if (result === null) return;
    answered = true;
    if (result.ok) context.logger.info({ peer, bytes: totalBytes }, "received snapshot from peer");
    else context.logger.warn({ peer, reason: result.reason }, `snapshot from peer failed: ${result.reason}`);
    context.onDone(result.ok);
    connection.finish(FrameType.SnapshotResult, encodeSnapshotResult(result), context.graceMs);
  };

  const startHandler = (message: Message, data: ChunkQueue): void => {
    Promise.resolve()
      .then(() => context.onSnapshot(message, data))
      .then(
        () => {
          handlerOutcome = "complete";
        },
        (error: unknown) => {
          handlerOutcome = error instanceof Error ? error : new Error(String(error));
        },
      )
      .finally(answer);
  };

  connection.setFrameHandler((type, payload) => {
    if (queue === null) {
      if (type !== FrameType.SnapshotHeader) throw new ProtocolViolationError(`snapshot connection must start with a header, got frame type ${type}`);
      const message = decodeMessage(payload);
      if (message.type !== MessageType.Snap) throw new ProtocolViolationError("snapshot header is not a Snap message");
      if (message.from !== context.peer || message.to !== context.localNodeId) {
        throw new ProtocolViolationError(`snapshot header from ${formatId(message.from)} to ${formatId(message.to)} on a connection from ${peer}`);
      }
      queue = new ChunkQueue(context.bufferBytesMax, resume);
      startHandler(message, queue);
      return;
    }
    if (streamOutcome !== null) throw new ProtocolViolationError(`frame type ${type} after the snapshot ended`);
    if (type === FrameType.SnapshotChunk) {
      totalBytes += payload.length;
      checksum = crc32c(payload, checksum);
      if (!queue.push(payload)) pause();
      return;
    }
    if (type === FrameType.SnapshotEnd) {
      const end = decodeSnapshotEnd(payload);
      if (end.totalBytes !== totalBytes || end.checksum !== checksum) {
        streamOutcome = new SnapshotCorruptError(
          `snapshot stream damaged: got ${totalBytes} bytes with CRC32C ${checksum.toString(16)}, sender sent ${end.totalBytes} bytes with CRC32C ${end.checksum.toString(16)}`);
        queue.fail(streamOutcome);
      } else {
        streamOutcome = "complete";
        queue.end();
      }
      answer();
      return;
    }
    throw new ProtocolViolationError(`unexpected frame type ${type} in a snapshot stream`);
  });

  connection.setCloseHandler((error) => {
    if (streamOutcome === null) {
      streamOutcome = new ConnectionLostError("snapshot connection closed before the end of the stream", { cause: error ?? undefined });
      queue?.fail(streamOutcome);
    }
    if (!answered) {
      answered = true;
      const reason = error?.message ?? (streamOutcome instanceof Error ? streamOutcome.message : "sender closed the connection");
      context.logger.warn({ peer, reason }, `snapshot from peer aborted: ${reason}`);
      context.onDone(false);
    }
  });
}
