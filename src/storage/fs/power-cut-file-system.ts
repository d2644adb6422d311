/**
 * A test-only layer over the real file system that keeps every write not yet
 * covered by a completed fdatasync in this process's memory and hands it to
 * the real file only inside sync(). Killing the process with SIGKILL then
 * loses exactly what a power cut would: a plain SIGKILL keeps the kernel's page
 * cache, so it cannot catch a missing fdatasync, and this layer can.
 *
 * Syncs that overlap (a second sync() called while the first is under way)
 * reach the real file one after another, in the order they were called: each
 * hands over the writes it took, then fdatasyncs, and only then may the next
 * hand over its own. So a sync never makes durable a write made after it was
 * called (the next sync's writes are not in the file yet), and when it
 * resolves, every write made before it was called is durable, including those
 * an earlier, overlapping sync took: what fdatasync promises, no more.
 *
 * Reads see the in-memory overlay, so the process itself observes its own
 * writes as usual. Namespace operations (create, rename, unlink) go straight
 * to the real file system: this layer models lost data, not lost names, and
 * the in-memory file system covers lost names (see memory-file-system.ts).
 */
import { PendingWrites, overlay, sizeAfter, type PendingOperation } from "./pending-writes.js";
import type { FileHandle, FileSystem, OpenOptions } from "./file-system.js";

export interface PowerCutOptions {
  /**
   * Extra time every sync() takes before it starts, standing in for a slow
   * disk: it widens the window in which a process can die with writes that
   * were handed over but are not yet durable.
   */
  readonly syncDelayMs?: number;
}

class PowerCutFileHandle implements FileHandle {
  private readonly pending = new PendingWrites();
  /** Operations a running sync() has taken but not yet handed to the real file: still visible to reads. */
  private syncing: PendingOperation[] = [];
  /** Settles when the last sync() called has finished with the real file (see the class comment). */
  private lastSync: Promise<void> = Promise.resolve();

  constructor(private readonly inner: FileHandle, private readonly syncDelayMs: number) {}

  get path(): string {
    return this.inner.path;
  }

  write(data: Uint8Array, position: number): Promise<void> {
    this.inner.size(); // throws on a closed handle, as the real one would
    this.pending.write(data, position);
    return Promise.resolve();
  }

  readSync(buffer: Uint8Array, position: number, length = buffer.length): number {
    const size = this.size();
    const count = Math.max(0, Math.min(length, size - position));
    if (count === 0) return 0;
    const read = this.inner.readSync(buffer, position, count);
    buffer.fill(0, read, count);
    // Re-applying the operations a sync has half written is harmless: each overwrites what it wrote.
    overlay(this.syncing, buffer, position, count);
    this.pending.overlay(buffer, position, count);
    return count;
  }

  sync(): Promise<void> {
    const operations = this.pending.take();
    this.syncing.push(...operations);
    const synced = this.lastSync.then(() => this.handOver(operations));
    this.lastSync = synced.catch(() => {});
    return synced;
  }

  private async handOver(operations: readonly PendingOperation[]): Promise<void> {
    if (this.syncDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.syncDelayMs));
    for (const operation of operations) {
      if (operation.kind === "write") await this.inner.write(operation.data, operation.position);
      else await this.inner.truncate(operation.size);
      // In the real file now: reads find it there.
      this.syncing.splice(this.syncing.indexOf(operation), 1);
    }
    await this.inner.sync();
  }

  truncate(size: number): Promise<void> {
    this.inner.size();
    this.pending.truncate(size);
    return Promise.resolve();
  }

  size(): number {
    return this.pending.sizeAfter(sizeAfter(this.syncing, this.inner.size()));
  }

  close(): Promise<void> {
    // Closing never syncs: unsynced data stays lost if the process dies now.
    return this.inner.close();
  }

  /** Bytes written but not yet synced (for tests). */
  unsyncedOperations(): number {
    return this.pending.length;
  }
}

export class PowerCutFileSystem implements FileSystem {
  constructor(private readonly inner: FileSystem, private readonly options: PowerCutOptions = {}) {}

  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    return new PowerCutFileHandle(await this.inner.open(path, options), this.options.syncDelayMs ?? 0);
  }

  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return this.inner.unlink(path);
  }

  readdir(directory: string): Promise<string[]> {
    return this.inner.readdir(directory);
  }

  mkdir(directory: string): Promise<void> {
    return this.inner.mkdir(directory);
  }

  syncDirectory(directory: string): Promise<void> {
    return this.inner.syncDirectory(directory);
  }
}
