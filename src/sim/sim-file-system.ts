/**
 * The simulator's disk: a MemoryFileSystem (which knows what a power cut
 * keeps) behind a queue that makes writes, truncations and syncs take
 * simulated time. Without the delay every write would be written and synced
 * within one turn of the microtask queue, so a crash could never land in the
 * middle of a batch; with it, a crash event that fires between a batch's
 * write and its fdatasync finds the write pending, and MemoryFileSystem.crash
 * keeps a random prefix of it, possibly torn.
 *
 * Operations complete in the order they were issued (one disk queue per
 * node), so a sync covers exactly the writes issued before it, as fdatasync
 * does. Name operations (open, rename, unlink, readdir, mkdir) complete on the
 * microtask queue, as MemoryFileSystem makes them; only syncDirectory, which
 * makes names durable, waits for the disk.
 *
 * A killed instance is a dead process: nothing it started ever settles, so
 * the WAL it served simply stops, with no rejection left for anyone to handle.
 */
import type { FileHandle, FileSystem, OpenOptions } from "../storage/fs/file-system.js";
import type { MemoryFileSystem } from "../storage/fs/memory-file-system.js";

/** What the disk needs from the simulation: its clock and agenda, and the delays it draws. */
export interface DiskClock {
  readonly nowMs: () => number;
  /** Runs `run` after `delayMs` of simulated time, as an event of the simulation. */
  readonly schedule: (delayMs: number, run: () => void) => void;
  readonly writeDelayMs: () => number;
  readonly syncDelayMs: () => number;
  /** Called when an operation completes: work continues on the microtask queue, which the run loop must drain. */
  readonly onCompletion: () => void;
}

export class SimFileSystem implements FileSystem {
  private dead = false;
  private busyUntilMs = 0;
  /** Operations issued and not yet completed. */
  private inFlight = 0;

  constructor(
    readonly inner: MemoryFileSystem,
    private readonly clock: DiskClock,
  ) {}

  /** The process died: nothing it started completes, now or later. */
  kill(): void {
    this.dead = true;
  }

  get killed(): boolean {
    return this.dead;
  }

  /** Operations queued on the disk and not completed (writes and syncs under way). */
  get operationsInFlight(): number {
    return this.inFlight;
  }

  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    const handle = await this.alive(() => this.inner.open(path, options));
    return new SimFileHandle(handle, this);
  }

  rename(from: string, to: string): Promise<void> {
    return this.alive(() => this.inner.rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return this.alive(() => this.inner.unlink(path));
  }

  readdir(directory: string): Promise<string[]> {
    return this.alive(() => this.inner.readdir(directory));
  }

  mkdir(directory: string): Promise<void> {
    return this.alive(() => this.inner.mkdir(directory));
  }

  syncDirectory(directory: string): Promise<void> {
    return this.queued(this.clock.syncDelayMs(), () => this.inner.syncDirectory(directory));
  }

  /**
   * Runs `operation` once the disk has done everything queued before it and
   * `delayMs` more; settles with its outcome unless the process died first.
   */
  queued<T>(delayMs: number, operation: () => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    const startMs = Math.max(this.clock.nowMs(), this.busyUntilMs);
    this.busyUntilMs = startMs + delayMs;
    this.inFlight++;
    return new Promise<T>((resolve, reject) => {
      this.clock.schedule(this.busyUntilMs - this.clock.nowMs(), () => {
        if (this.dead) return;
        this.clock.onCompletion();
        operation().then(
          (value) => {
            this.inFlight--;
            if (!this.dead) resolve(value);
          },
          (error: unknown) => {
            this.inFlight--;
            if (!this.dead) reject(error);
          },
        );
      });
    });
  }

  /**
   * Passes an immediate operation through; a dead process never sees it
   * finish, and one that is dead already never even starts it (leftover code of
   * a crashed process must not rename or delete the restarted one's files).
   */
  alive<T>(operation: () => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    return new Promise<T>((resolve, reject) => {
      operation().then(
        (value) => {
          if (!this.dead) resolve(value);
        },
        (error: unknown) => {
          if (!this.dead) reject(error);
        },
      );
    });
  }

  writeDelayMs(): number {
    return this.clock.writeDelayMs();
  }

  syncDelayMs(): number {
    return this.clock.syncDelayMs();
  }
}

class SimFileHandle implements FileHandle {
  constructor(
    private readonly inner: FileHandle,
    private readonly fileSystem: SimFileSystem,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  write(data: Uint8Array, position: number): Promise<void> {
    // Not copied: as with a real file, the caller must leave the buffer alone until write() resolves.
    return this.fileSystem.queued(this.fileSystem.writeDelayMs(), () => this.inner.write(data, position));
  }

  readSync(buffer: Uint8Array, position: number, length?: number): number {
    return this.inner.readSync(buffer, position, length);
  }

  sync(): Promise<void> {
    return this.fileSystem.queued(this.fileSystem.syncDelayMs(), () => this.inner.sync());
  }

  truncate(size: number): Promise<void> {
    return this.fileSystem.queued(this.fileSystem.writeDelayMs(), () => this.inner.truncate(size));
  }

  size(): number {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.fileSystem.alive(() => this.inner.close());
  }
}
