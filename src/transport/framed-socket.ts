/**
 * A socket (plain or TLS) that speaks frames: bytes in go through a
 * FrameDecoder to the current frame handler; a handler that throws, or a
 * decoder error, closes the connection with that error recorded. Whoever owns
 * the connection learns how it ended through `onClose` exactly once.
 */
import type { Socket } from "node:net";
import { assert } from "../lib/assert.js";
import { ConnectionLostError } from "./errors.js";
import { FrameDecoder, encodeFrame, type FrameHandler, FrameType } from "./frame.js";
import { encodeRefusal, type Refusal } from "./handshake.js";

export type CloseHandler = (error: Error | null) => void;

export class FramedSocket {
  private readonly decoder: FrameDecoder;
  private frameHandler: FrameHandler;
  private closeHandler: CloseHandler = () => {};
  /** Why the connection ended; the first cause wins. */
  private cause: Error | null = null;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private drainWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  private isClosed = false;
  readonly remoteAddress: string;

  constructor(readonly socket: Socket, frameBytesMax: number) {
    this.remoteAddress = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
    this.frameHandler = (type) => {
      throw new ConnectionLostError(`unexpected frame type ${type} before a handler was set`);
    };
    this.decoder = new FrameDecoder(frameBytesMax, (type, payload) => this.frameHandler(type, payload));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => this.recordCause(error));
    socket.on("drain", () => this.settleDrainWaiters(null));
    socket.on("close", () => this.onSocketClose());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Why the connection ended (or is ending), if anything went wrong. */
  get error(): Error | null {
    return this.cause;
  }

  get bufferedBytes(): number {
    return this.decoder.bufferedBytes;
  }

  setFrameHandler(handler: FrameHandler): void {
    this.frameHandler = handler;
  }

  setCloseHandler(handler: CloseHandler): void {
    this.closeHandler = handler;
  }

  setFrameBytesMax(frameBytesMax: number): void {
    this.decoder.setPayloadBytesMax(frameBytesMax);
  }

  write(bytes: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.isClosed || this.socket.destroyed) {
      if (callback) queueMicrotask(() => callback(this.cause ?? new ConnectionLostError("connection closed")));
      return false;
    }
    return this.socket.write(bytes, callback);
  }

  writeFrame(type: FrameType, payload: Uint8Array): boolean {
    return this.write(encodeFrame(type, payload));
  }

  /** Resolves when the socket's write buffer has drained; rejects if the connection ends first. */
  waitForDrain(): Promise<void> {
    if (this.isClosed) return Promise.reject(this.cause ?? new ConnectionLostError("connection closed"));
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Tells the peer why, then closes; the peer gets a grace period to read the reason. */
  refuse(refusal: Refusal, graceMs: number, cause: Error | null = null): void {
    if (this.isClosed) return;
    if (cause !== null) this.recordCause(cause);
    this.decoder.halt();
    this.socket.end(encodeFrame(FrameType.Refuse, encodeRefusal(refusal)));
    this.startTimer(graceMs, () => this.socket.destroy());
  }

  /** Sends a last frame and closes after the peer has had `graceMs` to read it. */
  finish(type: FrameType, payload: Uint8Array, graceMs: number): void {
    if (this.isClosed) return;
    this.decoder.halt();
    this.socket.end(encodeFrame(type, payload));
    this.startTimer(graceMs, () => this.socket.destroy());
  }

  destroy(error: Error | null = null): void {
    if (error !== null) this.recordCause(error);
    this.decoder.halt();
    this.socket.destroy();
  }

  /** A timer that is cleared when the connection closes, so no timer outlives its socket. */
  startTimer(delayMs: number, action: () => void): () => void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, delayMs);
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private recordCause(error: Error): void {
    if (this.cause === null) this.cause = error;
  }

  private settleDrainWaiters(error: Error | null): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
  }

  private onSocketClose(): void {
    assert(!this.isClosed, "socket closed twice");
    this.isClosed = true;
    this.decoder.halt();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.settleDrainWaiters(this.cause ?? new ConnectionLostError("connection closed"));
    this.closeHandler(this.cause);
  }
}
