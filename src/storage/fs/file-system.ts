/**
 * The file-system seam the WAL does all of its I/O through. Three
 * implementations sit behind it: the real one (node-file-system.ts), a
 * power-cut layer for process-level crash tests (power-cut-file-system.ts) and
 * an in-memory one with crash() for property tests and the simulator
 * (memory-file-system.ts). Keeping the seam this small is what makes the two
 * fault-injecting layers easy to trust.
 *
 * Durability contract, the same for every implementation:
 *  - data written with write() is durable only after a later sync() of the
 *    same handle has resolved (fdatasync);
 *  - a created, renamed or unlinked name is durable only after
 *    syncDirectory() of its parent directory has resolved.
 */
export interface FileHandle {
  readonly path: string;
  /** Writes all of `data` at `position`, extending the file if needed. */
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Reads up to `length` bytes (default: the buffer's length) at `position`
   * into `buffer`, synchronously; returns the count read, short only at the
   * end of the file. Synchronous on purpose: the WAL serves the Raft core's
   * synchronous log reads, and cold reads are rare.
   */
  readSync(buffer: Uint8Array, position: number, length?: number): number;
  /** fdatasync: everything written before this call is durable once it resolves. */
  sync(): Promise<void>;
  truncate(size: number): Promise<void>;
  /** The size this process sees, unsynced writes included. */
  size(): number;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Create the file when it does not exist (an existing file is opened as it is). */
  readonly create: boolean;
}

export interface FileSystem {
  open(path: string, options: OpenOptions): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Names (not paths) of the entries of a directory. */
  readdir(directory: string): Promise<string[]>;
  /** Creates the directory and its parents; an existing directory is fine. */
  mkdir(directory: string): Promise<void>;
  /** fsync of a directory: makes creates, renames and unlinks in it durable. */
  syncDirectory(directory: string): Promise<void>;
}

/** A file that open() was asked for without `create` does not exist. */
export class FileNotFoundError extends Error {
  override name = "FileNotFoundError";
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`no such file: ${path}`, options);
  }
}

/** A handle was used after close(), or after the in-memory file system crashed under it. */
export class StaleFileHandleError extends Error {
  override name = "StaleFileHandleError";
  constructor(readonly path: string, why: string) {
    super(`file handle of ${path} is no longer usable: ${why}`);
  }
}
