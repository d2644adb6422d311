/**
 * An in-memory file system with power cuts. Every file keeps two images: the
 * current one (what this process reads) and the durable one (what a disk
 * would still hold after losing power), plus the operations in between.
 * crash() throws the current images away, and every open handle and every
 * operation under way with them (powerCut() also kills the instance and
 * returns a new one over the same disk);
 * with a Prng it keeps a random prefix of each file's unsynced operations,
 * the last one possibly cut short: a torn write. Names behave the same way:
 * creates, renames and unlinks survive a crash only after syncDirectory().
 *
 * Fast and deterministic, for property tests and for the Raft simulator.
 */
import { posix } from "node:path";
import type { Prng } from "../../lib/prng.js";
import { FileNotFoundError, StaleFileHandleError, type FileHandle, type FileSystem, type OpenOptions } from "./file-system.js";
import { PendingWrites, type PendingOperation } from "./pending-writes.js";

/** A growable byte image of one file. */
class ByteImage {
  private bytes: Uint8Array;
  size: number;

  constructor(bytes: Uint8Array = new Uint8Array(0), size = bytes.length) {
    this.bytes = bytes;
    this.size = size;
  }

  clone(): ByteImage {
    return new ByteImage(this.bytes.slice(0, this.size), this.size);
  }

  apply(operation: PendingOperation): void {
    if (operation.kind === "truncate") {
      this.ensure(operation.size);
      // Zero what a truncation drops so a later extension reads zeros, as on a real file.
      if (operation.size < this.size) this.bytes.fill(0, operation.size, this.size);
      this.size = operation.size;
      return;
    }
    const end = operation.position + operation.data.length;
    this.ensure(end);
    this.bytes.set(operation.data, operation.position);
    if (end > this.size) this.size = end;
  }

  read(buffer: Uint8Array, position: number, length: number): number {
    const count = Math.max(0, Math.min(length, this.size - position));
    if (count > 0) buffer.set(this.bytes.subarray(position, position + count), 0);
    return count;
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.size);
  }

  private ensure(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(size, this.bytes.length * 2, 4096));
    grown.set(this.bytes.subarray(0, this.size));
    this.bytes = grown;
  }
}

class Inode {
  current = new ByteImage();
  durable = new ByteImage();
  readonly pending = new PendingWrites();

  write(data: Uint8Array, position: number): void {
    this.pending.write(data, position);
    const list = this.pending.list();
    this.current.apply(list[list.length - 1]);
  }

  truncate(size: number): void {
    this.pending.truncate(size);
    this.current.apply({ kind: "truncate", size });
  }

  /** Makes durable the pending operations numbered below `recorded` (see PendingWrites.recorded). */
  sync(recorded: number): void {
    for (const operation of this.pending.takeBefore(recorded)) this.durable.apply(operation);
  }

  /** What survives a power cut: the durable image, plus a random prefix of the rest when a Prng is given. */
  crash(prng: Prng | undefined): void {
    const operations = this.pending.take();
    const image = this.durable.clone();
    if (prng && operations.length > 0) {
      const kept = prng.int(operations.length + 1);
      for (let i = 0; i < kept; i++) image.apply(operations[i]);
      const torn = operations[kept];
      if (torn && torn.kind === "write" && torn.data.length > 1 && prng.chance(0.5)) {
        image.apply({ kind: "write", position: torn.position, data: torn.data.subarray(0, prng.int(torn.data.length)) });
      }
    }
    this.durable = image;
    this.current = image.clone();
  }
}

export type MemoryFileSystemLatency = "microtask" | "macrotask";

export interface MemoryFileSystemOptions {
  /**
   * When asynchronous operations complete: on the next microtask (fastest), or
   * on a later macrotask (setImmediate), so that tests can crash the file
   * system while writes and syncs are in flight.
   */
  readonly latency?: MemoryFileSystemLatency;
}

class MemoryFileHandle implements FileHandle {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly inode: Inode,
    private readonly fileSystem: MemoryFileSystem,
    private readonly generation: number,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    this.check();
    await this.fileSystem.settle();
    this.check();
    this.inode.write(data, position);
  }

  readSync(buffer: Uint8Array, position: number, length = buffer.length): number {
    this.check();
    return this.inode.current.read(buffer, position, length);
  }

  async sync(): Promise<void> {
    this.check();
    // What is durable is what was written before the call, as with fdatasync: noted as an operation
    // number, not a count, since another sync may take operations from the front meanwhile.
    const covered = this.inode.pending.recorded;
    await this.fileSystem.settle();
    this.check();
    this.inode.sync(covered);
  }

  async truncate(size: number): Promise<void> {
    this.check();
    await this.fileSystem.settle();
    this.check();
    this.inode.truncate(size);
  }

  size(): number {
    this.check();
    return this.inode.current.size;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    // Closing a handle that died in a crash fails like everything else it is asked, so dead code stops early.
    try {
      this.fileSystem.checkAlive(this.path, this.generation);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  private check(): void {
    if (this.closed) throw new StaleFileHandleError(this.path, "closed");
    this.fileSystem.checkAlive(this.path, this.generation);
  }
}

/** The "disk": what outlives the processes (file system instances) that use it. */
interface Disk {
  /** Bumped by every crash: handles and operations of an older generation are dead. */
  generation: number;
  names: Map<string, Inode>;
  durableNames: Map<string, Inode>;
  readonly directories: Set<string>;
}

export class MemoryFileSystem implements FileSystem {
  private alive = true;
  private readonly latency: MemoryFileSystemLatency;
  private readonly disk: Disk;

  constructor(options: MemoryFileSystemOptions = {}, disk?: Disk) {
    this.latency = options.latency ?? "microtask";
    this.disk = disk ?? { generation: 0, names: new Map(), durableNames: new Map(), directories: new Set(["/"]) };
  }

  settle(): Promise<void> {
    return this.latency === "microtask" ? Promise.resolve() : new Promise((resolve) => setImmediate(resolve));
  }

  /** Fails an operation or handle from before a crash (or of an instance a power cut killed). */
  checkAlive(path: string, generation: number): void {
    if (!this.alive || generation !== this.disk.generation) throw new StaleFileHandleError(path, "the file system crashed");
  }

  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    const name = posix.resolve(path);
    await this.settled(name);
    let inode = this.disk.names.get(name);
    if (!inode) {
      if (!options.create || !this.disk.directories.has(posix.dirname(name))) throw new FileNotFoundError(name);
      inode = new Inode();
      this.disk.names.set(name, inode);
    }
    return new MemoryFileHandle(name, inode, this, this.disk.generation);
  }

  async rename(from: string, to: string): Promise<void> {
    const source = posix.resolve(from);
    await this.settled(source);
    const inode = this.disk.names.get(source);
    if (!inode) throw new FileNotFoundError(source);
    this.disk.names.delete(source);
    this.disk.names.set(posix.resolve(to), inode);
  }

  async unlink(path: string): Promise<void> {
    const name = posix.resolve(path);
    await this.settled(name);
    if (!this.disk.names.delete(name)) throw new FileNotFoundError(name);
  }

  async readdir(directory: string): Promise<string[]> {
    const name = posix.resolve(directory);
    await this.settled(name);
    if (!this.disk.directories.has(name)) throw new FileNotFoundError(name);
    return [...this.disk.names.keys()].filter((path) => posix.dirname(path) === name).map((path) => posix.basename(path));
  }

  async mkdir(directory: string): Promise<void> {
    this.checkAlive(directory, this.disk.generation);
    // Directories are durable at once: the WAL creates its directory once, before anything else.
    for (let name = posix.resolve(directory); !this.disk.directories.has(name); name = posix.dirname(name)) this.disk.directories.add(name);
  }

  async syncDirectory(directory: string): Promise<void> {
    const name = posix.resolve(directory);
    await this.settled(name);
    const { names, durableNames } = this.disk;
    for (const path of [...durableNames.keys()]) {
      if (posix.dirname(path) === name && names.get(path) !== durableNames.get(path)) durableNames.delete(path);
    }
    for (const [path, inode] of names) if (posix.dirname(path) === name) durableNames.set(path, inode);
  }

  /**
   * A power cut: everything not yet durable is lost (with a Prng: a random
   * prefix of each file's unsynced operations survives, the last possibly
   * torn). Every open handle dies, and so does every operation under way.
   * This instance stays usable for the restarted machine, and the returned
   * one is a second view of the same disk. Code of the dead process that
   * still holds this instance could start new operations through it, so
   * prefer powerCut(), which closes that door.
   */
  crash(prng?: Prng): MemoryFileSystem {
    this.disk.generation++;
    const survivors = new Set(this.disk.durableNames.values());
    for (const inode of survivors) inode.crash(prng);
    this.disk.names = new Map(this.disk.durableNames);
    return new MemoryFileSystem({ latency: this.latency }, this.disk);
  }

  /**
   * A power cut that also kills this instance for good: the dead process's
   * code can no longer touch the disk through it, whatever it still runs.
   * Returns the restarted machine's view of the same disk.
   */
  powerCut(prng?: Prng): MemoryFileSystem {
    const restarted = this.crash(prng);
    this.alive = false;
    return restarted;
  }

  /** The bytes a process would read now (test helper). */
  readFile(path: string): Uint8Array {
    const inode = this.disk.names.get(posix.resolve(path));
    if (!inode) throw new FileNotFoundError(path);
    return inode.current.view().slice();
  }

  /** Replaces a file's content, durably (test helper for planting damage). */
  writeFile(path: string, bytes: Uint8Array): void {
    const name = posix.resolve(path);
    const inode = this.disk.names.get(name) ?? new Inode();
    inode.current = new ByteImage(bytes.slice());
    inode.durable = new ByteImage(bytes.slice());
    inode.pending.take();
    this.disk.names.set(name, inode);
    this.disk.durableNames.set(name, inode);
  }

  /** Paths of all files, sorted (test helper). */
  listFiles(): string[] {
    return [...this.disk.names.keys()].sort();
  }

  /** Lets an operation take its time; one that a crash overtakes fails and has no effect. */
  private async settled(path: string): Promise<void> {
    const generation = this.disk.generation;
    this.checkAlive(path, generation);
    await this.settle();
    this.checkAlive(path, generation);
  }
}
