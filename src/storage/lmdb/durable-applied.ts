/**
 * The applied index that is on disk, not just committed. With
 * overlappingSync an LMDB commit is visible before its flush completes, so
 * right after an apply the store's applied index may still be lost by a
 * power cut; the Raft log must
 * keep every entry above the durable one. The runtime reports each apply
 * here and compacts the log only below `durable`.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { SnapshotSource } from "../../kv/snapshot.js";
import type { Mvcc } from "../../kv/mvcc.js";

export interface Flushable {
  flushed(): Promise<void>;
}

export class DurableAppliedIndex {
  private durableIndex = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly store: Flushable, private readonly mvcc: Mvcc) {
    // What was applied before this process started may sit unflushed in the page cache after a crash: confirm it too.
    this.noteApplied();
  }

  /** The highest applied index known to be flushed. */
  get durable(): number {
    return this.durableIndex;
  }

  /** Call after each applyEntries; the durable index follows once LMDB reports the flush. */
  noteApplied(): Promise<void> {
    const index = this.mvcc.appliedIndex();
    this.pending = this.store.flushed().then(() => {
      if (index > this.durableIndex) this.durableIndex = index;
    });
    return this.pending;
  }
}

/**
 * The snapshot of `mvcc` as an async stream of checksummed chunks. Each
 * chunk is one short read; the stream yields to the event loop between
 * chunks so applies and ticks go on while it is consumed.
 */
export async function* snapshotStream(mvcc: Mvcc, chunkBytes?: number): AsyncGenerator<Uint8Array> {
  yield* streamSnapshotSource(new SnapshotSource(mvcc, chunkBytes));
}

/**
 * Streams a source that was created earlier (its header and meta table are
 * captured at creation, so a caller can read the position it stands at
 * before the first chunk is pulled).
 */
export async function* streamSnapshotSource(source: SnapshotSource): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const chunk = source.nextChunk();
      if (chunk === null) return;
      yield chunk;
      await yieldToEventLoop();
    }
  } finally {
    source.close();
  }
}
