/**
 * Snapshot export and install for the in-memory store. Export yields to the
 * event loop between chunks so applies keep running; install builds the new
 * state in a separate store and swaps it in with one assignment, after the
 * whole stream checked out.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Mvcc } from "../../kv/mvcc.js";
import { SnapshotInstaller, SnapshotSource, type SnapshotHeader } from "../../kv/snapshot.js";
import { MemoryKvStore } from "./memory-kv-store.js";

export async function* memorySnapshotStream(mvcc: Mvcc, chunkBytes?: number): AsyncGenerator<Uint8Array> {
  const source = new SnapshotSource(mvcc, chunkBytes);
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

/** Replaces `store`'s content with the snapshot; on any error the store is unchanged. Call mvcc.reload() afterwards. */
export async function installMemorySnapshot(store: MemoryKvStore, stream: AsyncIterable<Uint8Array>): Promise<SnapshotHeader> {
  const staging = new MemoryKvStore();
  const installer = new SnapshotInstaller(staging);
  for await (const piece of stream) installer.push(piece);
  const header = installer.finish();
  store.replaceWith(staging);
  return header;
}
