/**
 * The real file system on node:fs. Writes and fdatasync go through libuv's
 * thread pool (callback API, wrapped by hand: cheaper than fs/promises'
 * FileHandle on the hot path); reads are synchronous (see FileHandle.readSync).
 */
import * as fs from "node:fs";
import { FileNotFoundError, StaleFileHandleError, type FileHandle, type FileSystem, type OpenOptions } from "./file-system.js";

/** Writes up to this size are done synchronously (a page-cache copy of a few microseconds). */
const SYNCHRONOUS_WRITE_BYTES_MAX = 256 * 1024;

class NodeFileHandle implements FileHandle {
  private fd: number;
  private sizeBytes: number;

  constructor(readonly path: string, fd: number, sizeBytes: number) {
    this.fd = fd;
    this.sizeBytes = sizeBytes;
  }

  write(data: Uint8Array, position: number): Promise<void> {
    const fd = this.liveFd();
    const end = position + data.length;
    if (data.length <= SYNCHRONOUS_WRITE_BYTES_MAX) {
      // A small write only copies into the page cache: doing it here saves a thread-pool round trip per
      // WAL batch (the fdatasync that follows is the part that waits for the disk, and stays asynchronous).
      try {
        let done = 0;
        while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
      } catch (error) {
        return Promise.reject(error);
      }
      if (end > this.sizeBytes) this.sizeBytes = end;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const writeFrom = (done: number): void => {
        fs.write(fd, data, done, data.length - done, position + done, (error, written) => {
          if (error) return reject(error);
          if (done + written < data.length) return writeFrom(done + written);
          if (end > this.sizeBytes) this.sizeBytes = end;
          resolve();
        });
      };
      writeFrom(0);
    });
  }

  readSync(buffer: Uint8Array, position: number, length = buffer.length): number {
    const fd = this.liveFd();
    let done = 0;
    while (done < length) {
      const read = fs.readSync(fd, buffer, done, length - done, position + done);
      if (read === 0) break;
      done += read;
    }
    return done;
  }

  sync(): Promise<void> {
    const fd = this.liveFd();
    return new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  truncate(size: number): Promise<void> {
    const fd = this.liveFd();
    return new Promise<void>((resolve, reject) =>
      fs.ftruncate(fd, size, (error) => {
        if (error) return reject(error);
        this.sizeBytes = size;
        resolve();
      }),
    );
  }

  size(): number {
    this.liveFd();
    return this.sizeBytes;
  }

  close(): Promise<void> {
    if (this.fd < 0) return Promise.resolve();
    const fd = this.fd;
    this.fd = -1;
    return new Promise<void>((resolve, reject) => fs.close(fd, (error) => (error ? reject(error) : resolve())));
  }

  private liveFd(): number {
    if (this.fd < 0) throw new StaleFileHandleError(this.path, "closed");
    return this.fd;
  }
}

export class NodeFileSystem implements FileSystem {
  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    // O_RDWR (| O_CREAT) without O_TRUNC: an existing file keeps its bytes.
    const flags = options.create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR;
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(path, flags, 0o644, (error, descriptor) => {
        if (!error) return resolve(descriptor);
        reject(error.code === "ENOENT" ? new FileNotFoundError(path, { cause: error }) : error);
      }),
    );
    const size = fs.fstatSync(fd).size;
    return new NodeFileHandle(path, fd, size);
  }

  rename(from: string, to: string): Promise<void> {
    return fs.promises.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fs.promises.unlink(path);
  }

  readdir(directory: string): Promise<string[]> {
    return fs.promises.readdir(directory);
  }

  async mkdir(directory: string): Promise<void> {
    await fs.promises.mkdir(directory, { recursive: true });
  }

  async syncDirectory(directory: string): Promise<void> {
    const handle = await fs.promises.open(directory, fs.constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
