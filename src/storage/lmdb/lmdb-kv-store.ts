/**
 * The KvStore on LMDB (the `lmdb` package): one LMDB environment file per
 * state generation, with sub-databases "revisions", "key-index" and "meta",
 * binary keys compared byte-wise (so range scans follow etcd's key order).
 *
 * Directory layout:
 *   CURRENT            names the live generation ("state-000002.mdb\n"),
 *                      replaced only by write-to-temp, fsync, rename, fsync dir
 *   state-NNNNNN.mdb   the LMDB environment of a generation (+ its -lock file)
 * A snapshot install writes generation N+1 completely, syncs it, and only
 * then flips CURRENT: a crash at any point leaves either the old or the new
 * state. Files of other generations are leftovers and are removed at open.
 *
 * Reads: read(fn) uses lmdb's implicit read transaction, which cannot
 * change while synchronous code runs (it is renewed after our own commits and
 * on later event turns). No explicit read transaction is held across awaits:
 * with lmdb 3.5.6, useReadTransaction() handed back snapshots that either saw
 * nothing through getRange or saw later commits through get (tried here), and
 * a long-held LMDB reader pins pages and grows the file. Long reads (streamed
 * ranges, snapshots) are instead consistent at the MVCC level: they read at
 * one revision and hold compaction off (see kv/mvcc.ts and kv/snapshot.ts).
 *
 * Sync modes (numbers from this machine's VM disk; bench/lmdb.ts measures
 * them). The WAL is the source of truth for everything above the DURABLE
 * applied index, so LMDB commits need not be synced when they return, as
 * long as callers learn what is flushed (flushed(), DurableAppliedIndex) and
 * compact the log only below it. Two ways to get there:
 *  - "commit" (default): transactionSync with LMDB's own sync protocol
 *    (overlappingSync). Safe against power loss by LMDB's guarantees, but
 *    the commit's page writes and fsync run on the main thread: about 4 ms
 *    per 100-key batch here, paid once per applied batch.
 *  - "background": the environment runs with noSync, commits cost tens of
 *    microseconds, and flushed() runs env.sync() on LMDB's thread. A power
 *    cut before that sync can lose the tail (fine: the log still has it) but,
 *    as LMDB documents for MDB_NOSYNC, may also corrupt the file on a file
 *    system that reorders writes; recovery is then a snapshot from a peer.
 * The default keeps LMDB's integrity guarantee; the server may choose
 * "background" where ticks matter more (a decision for the lead).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import { decodeMetaNumber, KV_FORMAT_VERSION, KvTable, MetaKey, type KvEntry, type KvRangeOptions, type KvReader, type KvStore, type KvWriter } from "../../kv/store.js";
import { NewerFormatError } from "../../kv/errors.js";
import { SnapshotInstaller, type SnapshotHeader } from "../../kv/snapshot.js";
import { assert } from "../../lib/assert.js";

const CURRENT_FILE = "CURRENT";
const GENERATION_PATTERN = /^state-(\d{6})\.mdb$/;
/** LMDB's map size: the most the state may grow to. Needs a home in lib/limits.ts (etcd's --quota-backend-bytes default is 2 GiB). */
export const LMDB_MAP_BYTES = 8 * 1024 * 1024 * 1024;

const TABLE_NAMES = ["revisions", "key-index", "meta"] as const;

export class LmdbFormatError extends Error {
  override name = "LmdbFormatError";
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
  }
}

interface Environment {
  readonly root: RootDatabase<Uint8Array, Uint8Array>;
  readonly tables: readonly Database<Uint8Array, Uint8Array>[];
  readonly path: string;
}

function generationName(generation: number): string {
  return `state-${String(generation).padStart(6, "0")}.mdb`;
}

export type LmdbSyncMode = "commit" | "background";

export interface LmdbKvStoreOptions {
  readonly syncMode?: LmdbSyncMode;
}

function openEnvironment(path: string, syncMode: LmdbSyncMode): Environment {
  const root = open<Uint8Array, Uint8Array>({
    path, maxDbs: 8, mapSize: LMDB_MAP_BYTES, keyEncoding: "binary", encoding: "binary", noSync: syncMode === "background",
  });
  const openTable = (name: string) => root.openDB<Uint8Array, Uint8Array>({ name, keyEncoding: "binary", encoding: "binary" });
  try {
    // Meta first, read before anything else is created: a newer layout is refused untouched.
    const meta = openTable(TABLE_NAMES[KvTable.Meta]);
    const version = meta.getBinary(MetaKey.formatVersion);
    if (version !== undefined && decodeMetaNumber(version) > KV_FORMAT_VERSION) {
      throw new NewerFormatError(path, decodeMetaNumber(version), KV_FORMAT_VERSION);
    }
    const tables = [openTable(TABLE_NAMES[0]), openTable(TABLE_NAMES[1]), meta];
    return { root, tables, path };
  } catch (error) {
    void root.close();
    throw error;
  }
}

/** Writes a small file so that it is either wholly there or not: temp file, fsync, rename, fsync of the directory. */
function writeFileAtomically(directory: string, name: string, content: string, beforeRename?: () => void): void {
  const temporary = join(directory, `${name}.tmp`);
  const descriptor = openSync(temporary, "w");
  try {
    writeSync(descriptor, content);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  beforeRename?.();
  renameSync(temporary, join(directory, name));
  syncDirectory(directory);
}

function syncDirectory(directory: string): void {
  const descriptor = openSync(directory, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

function removeGeneration(directory: string, name: string): void {
  rmSync(join(directory, name), { force: true });
  rmSync(join(directory, `${name}-lock`), { force: true });
}

/** Steps of a snapshot install, named so tests can simulate a crash right after each. */
export type InstallStep = "data-written" | "new-state-synced" | "pointer-written" | "pointer-swapped" | "old-removed";

export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
  constructor(readonly step: InstallStep) {
    super(`simulated crash after ${step}`);
  }
}

export class LmdbKvStore implements KvStore {
  private environment: Environment;
  private generation: number;
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(readonly directory: string, generation: number, environment: Environment, readonly syncMode: LmdbSyncMode) {
    this.generation = generation;
    this.environment = environment;
  }

  /** Opens (or creates) the store in `directory`. Refuses a newer format, naming the file. */
  static open(directory: string, options: LmdbKvStoreOptions = {}): LmdbKvStore {
    const syncMode = options.syncMode ?? "commit";
    mkdirSync(directory, { recursive: true });
    const currentPath = join(directory, CURRENT_FILE);
    let generation: number;
    if (existsSync(currentPath)) {
      const content = readFileSync(currentPath, "utf8");
      const match = GENERATION_PATTERN.exec(content.trimEnd());
      if (match === null || !content.endsWith("\n")) throw new LmdbFormatError(currentPath, `CURRENT does not name a state file: ${JSON.stringify(content.slice(0, 64))}`);
      generation = Number(match[1]);
      if (!existsSync(join(directory, generationName(generation)))) throw new LmdbFormatError(currentPath, `CURRENT names ${generationName(generation)}, which is missing`);
    } else {
      generation = 1;
      removeGeneration(directory, generationName(generation));
    }
    const environment = openEnvironment(join(directory, generationName(generation)), syncMode);
    if (!existsSync(currentPath)) writeFileAtomically(directory, CURRENT_FILE, `${generationName(generation)}\n`);
    // Generations CURRENT does not name are the remains of an install that crashed before its swap, or after it.
    for (const name of readdirSync(directory)) {
      const match = GENERATION_PATTERN.exec(name.replace(/-lock$/, ""));
      if (match !== null && Number(match[1]) !== generation) rmSync(join(directory, name), { force: true });
      if (name === `${CURRENT_FILE}.tmp`) rmSync(join(directory, name), { force: true });
    }
    return new LmdbKvStore(directory, generation, environment, syncMode);
  }

  get location(): string {
    return this.environment.path;
  }

  read<T>(fn: (reader: KvReader) => T): T {
    assert(!this.closed, "lmdb kv store used after close");
    return fn(this.readerOf(this.environment));
  }

  write<T>(fn: (writer: KvWriter) => T): T {
    assert(!this.closed, "lmdb kv store used after close");
    const environment = this.environment;
    const reader = this.readerOf(environment);
    const writer: KvWriter = {
      get: reader.get,
      range: reader.range,
      put: (table, key, value) => {
        environment.tables[table].putSync(key, value);
      },
      delete: (table, key) => {
        environment.tables[table].removeSync(key);
      },
    };
    return environment.root.transactionSync(() => fn(writer));
  }

  private readerOf(environment: Environment): KvReader {
    return {
      get: (table, key) => environment.tables[table].getBinary(key),
      range: (table, options = {}) => rangeOf(environment.tables[table], options),
    };
  }

  /**
   * Bytes of the state file, and bytes its tables actually occupy (LMDB
   * reuses freed pages in place, so after a compaction the file keeps its
   * size while the in-use figure drops). The quota is checked against in-use.
   */
  usage(): { fileBytes: number; inUseBytes: number } {
    assert(!this.closed, "lmdb kv store used after close");
    const pages = (stats: { treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number }) =>
      (stats.treeBranchPageCount ?? 0) + (stats.treeLeafPageCount ?? 0) + (stats.overflowPages ?? 0);
    const rootStats = this.environment.root.getStats() as { pageSize: number; lastPageNumber: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    let inUsePages = pages(rootStats);
    for (const table of this.environment.tables) inUsePages += pages(table.getStats() as Parameters<typeof pages>[0]);
    return { fileBytes: (rootStats.lastPageNumber + 1) * rootStats.pageSize, inUseBytes: inUsePages * rootStats.pageSize };
  }

  /** Resolves when every write committed so far is flushed to disk. */
  async flushed(): Promise<void> {
    const root = this.environment.root;
    if (this.syncMode === "commit") {
      await root.flushed;
      return;
    }
    // env.sync runs on LMDB's thread and covers every commit made before the call.
    const sync = (root as unknown as { sync(callback: (error?: Error) => void): void }).sync.bind(root);
    await new Promise<void>((resolve, reject) => sync((error) => (error ? reject(error) : resolve())));
  }

  /**
   * Replaces the whole state with a snapshot stream, atomically: the new
   * generation is written and synced beside the old one and CURRENT is
   * flipped last. A damaged or truncated stream leaves the old state in
   * place (and removes the partial new one). Call mvcc.reload() afterwards.
   * `crashAt` is for tests: it stops right after that step, as a crash would.
   */
  async installSnapshot(stream: AsyncIterable<Uint8Array>, options: { crashAt?: InstallStep } = {}): Promise<SnapshotHeader> {
    assert(!this.closed, "lmdb kv store used after close");
    const crash = (step: InstallStep): void => {
      if (options.crashAt === step) throw new SimulatedCrash(step);
    };
    const nextGeneration = this.generation + 1;
    const nextName = generationName(nextGeneration);
    removeGeneration(this.directory, nextName);
    const staging = new LmdbKvStore(this.directory, nextGeneration, openEnvironment(join(this.directory, nextName), this.syncMode), this.syncMode);
    let swapped = false;
    try {
      const installer = new SnapshotInstaller(staging);
      for await (const piece of stream) installer.push(piece);
      const header = installer.finish();
      crash("data-written");
      await staging.flushed();
      await staging.environment.root.close();
      staging.closed = true;
      crash("new-state-synced");
      writeFileAtomically(this.directory, CURRENT_FILE, `${nextName}\n`, () => crash("pointer-written"));
      swapped = true;
      crash("pointer-swapped");
      const previous = this.environment;
      const previousName = generationName(this.generation);
      this.environment = openEnvironment(join(this.directory, nextName), this.syncMode);
      this.generation = nextGeneration;
      await previous.root.close();
      removeGeneration(this.directory, previousName);
      crash("old-removed");
      return header;
    } catch (error) {
      if (error instanceof SimulatedCrash) {
        // A crash does not clean up: leave the files exactly as they are and stop using the store.
        if (!staging.closed) await staging.environment.root.close();
        await this.abandon();
        throw error;
      }
      if (!staging.closed) await staging.environment.root.close();
      if (!swapped) removeGeneration(this.directory, nextName);
      throw error;
    }
  }

  /** Closes without waiting for anything else; for crash simulations. */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.environment.root.close();
  }

  /** Flushes and closes. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.closed) return;
      await this.flushed();
      this.closed = true;
      await this.environment.root.close();
    })();
    return this.closing;
  }
}

function* rangeOf(table: Database<Uint8Array, Uint8Array>, options: KvRangeOptions): Generator<KvEntry> {
  // lmdb walks backwards from `start` (inclusive) down to `end` (exclusive); our reverse is [start, end) from the top.
  const query: Record<string, unknown> = options.reverse
    ? { reverse: true, ...(options.end !== undefined ? { start: options.end, exclusiveStart: true } : {}), ...(options.start !== undefined ? { end: options.start, inclusiveEnd: true } : {}) }
    : { ...(options.start !== undefined ? { start: options.start } : {}), ...(options.end !== undefined ? { end: options.end } : {}) };
  for (const { key, value } of table.getRange(query)) yield { key: key as Uint8Array, value: value as Uint8Array };
}
