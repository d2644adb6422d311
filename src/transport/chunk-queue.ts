/**
 * The receiving end of a snapshot stream: an async iterable of chunks with a
 * byte budget. The socket side pushes; when the consumer falls behind by more
 * than `highWaterBytes`, push() returns false and the socket is paused until
 * `onDrain` says the consumer has caught up to half of that. Memory held is
 * thus bounded by the budget plus one frame, however large the snapshot.
 */
import { assert } from "../lib/assert.js";

interface Waiter {
  resolve(result: IteratorResult<Uint8Array>): void;
  reject(error: unknown): void;
}

export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;
  private ended = false;
  private failure: unknown = null;
  private stopped = false;
  private paused = false;
  private iterated = false;
  private waiter: Waiter | null = null;

  constructor(private readonly highWaterBytes: number, private readonly onDrain: () => void) {
    assert(highWaterBytes > 0, "chunk queue needs a positive byte budget");
  }

  /** Bytes pushed and not yet taken by the consumer. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** True once the consumer stopped early (break, return, throw): later chunks are discarded. */
  get abandoned(): boolean {
    return this.stopped;
  }

  /** Adds a chunk; false means "pause the producer until onDrain". */
  push(chunk: Uint8Array): boolean {
    assert(!this.ended && this.failure === null, "push after the chunk stream finished");
    if (this.stopped) return true;
    if (this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: chunk, done: false });
      return true;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes > this.highWaterBytes) this.paused = true;
    return !this.paused;
  }

  end(): void {
    if (this.ended || this.failure !== null) return;
    this.ended = true;
    this.settleWaiter();
  }

  fail(error: unknown): void {
    if (this.ended || this.failure !== null) return;
    this.failure = error;
    this.settleWaiter();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    assert(!this.iterated, "a snapshot stream can be read only once");
    this.iterated = true;
    return {
      next: () => this.next(),
      return: async () => {
        this.stop();
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    assert(this.waiter === null, "concurrent next() on a snapshot stream");
    if (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head];
      this.chunks[this.head++] = EMPTY;
      this.bytes -= chunk.length;
      if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.head = 0;
      }
      this.maybeDrain();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.ended || this.stopped) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private stop(): void {
    this.stopped = true;
    this.chunks.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.maybeDrain();
  }

  private maybeDrain(): void {
    if (this.paused && this.bytes <= this.highWaterBytes / 2) {
      this.paused = false;
      this.onDrain();
    }
  }

  private settleWaiter(): void {
    if (this.waiter === null) return;
    const waiter = this.waiter;
    this.waiter = null;
    if (this.failure !== null) waiter.reject(this.failure);
    else waiter.resolve({ value: undefined, done: true });
  }
}

const EMPTY = new Uint8Array(0);
