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
 * on later event turns). Long reads (streamed ranges, snapshots) hold no
 * LMDB read transaction across awaits, since a long-held LMDB reader pins
 * pages and grows the file; they are consistent at the MVCC level instead:
 * they read at one revision and hold compaction off (see kv/mvcc.ts and
 * kv/snapshot.ts). The one exception is the defragmentation's copy, which
 * needs the raw tables as of one instant and holds its reader only while it
 * copies.
 *
 * The lmdb package is pinned to the 2.9 line: 3.x rewrote LMDB's free-page
 * handling, and with 3.5.6 we saw a write fail inside the page allocator
 * (MDB_BAD_VALSIZE, "Invalid zero size key" in the free list) and
 * useReadTransaction() snapshots that saw later commits.
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
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
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

/** fsync a directory, so a rename or a new file in it survives a crash (synchronously: the defragmentation's swap runs in one step). */
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

/**
 * Defragmentation limits. The journal holds the writes made while the
 * compacting copy runs; past JOURNAL_BYTES_MAX the defragmentation gives up
 * (the store is unchanged) rather than grow memory without bound. Catch-up
 * rounds replay the journal into the copy while writes go on; the final,
 * write-pausing step starts only once at most FINAL_JOURNAL_OPS_MAX writes
 * are left, so the pause is one short transaction plus one fsync.
 */
export const DEFRAGMENT_JOURNAL_BYTES_MAX = 256 * 1024 * 1024;
export const DEFRAGMENT_FINAL_JOURNAL_OPS_MAX = 2000;
const DEFRAGMENT_REPLAY_BATCH_OPS = 2000;
/** Bytes of keys and values copied per write transaction of the compacting copy, between yields to other work. */
const DEFRAGMENT_COPY_BATCH_BYTES = 4 * 1024 * 1024;
/** Replay batches before giving up on a write load that outpaces the catch-up (each batch is DEFRAGMENT_REPLAY_BATCH_OPS writes). */
const DEFRAGMENT_CATCH_UP_ROUNDS_MAX = 10_000;

export class DefragmentError extends Error {
  override name = "DefragmentError";
}

export interface DefragmentResult {
  readonly fileBytesBefore: number;
  readonly fileBytesAfter: number;
  /** How long writes were held back: the final replay, the fsync of the copy and the swap, all in one synchronous step. */
  readonly pauseMs: number;
  /** Writes made while the copy ran, replayed into it. */
  readonly journaledWrites: number;
  readonly totalMs: number;
}

/** One write made while a defragmentation runs: a put (value) or a delete (null). */
interface JournaledWrite {
  readonly table: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

interface Journal {
  writes: JournaledWrite[];
  bytes: number;
}

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
  /** Set while a defragmentation runs: every committed write is also recorded here, for replay into the copy. */
  private journal: Journal | null = null;
  /** Defragmentation and snapshot install both build the next generation: they run one at a time. */
  private maintenance: Promise<unknown> = Promise.resolve();

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
    const journal = this.journal;
    // Recorded only once the transaction commits: an aborted transaction must not be replayed.
    const recorded: JournaledWrite[] | null = journal ? [] : null;
    const writer: KvWriter = {
      get: reader.get,
      range: reader.range,
      put: (table, key, value) => {
        environment.tables[table].putSync(key, value);
        recorded?.push({ table, key: key.slice(), value: value.slice() });
      },
      delete: (table, key) => {
        environment.tables[table].removeSync(key);
        recorded?.push({ table, key: key.slice(), value: null });
      },
    };
    const result = environment.root.transactionSync(() => fn(writer));
    if (journal && recorded) {
      for (const write of recorded) {
        journal.writes.push(write);
        journal.bytes += write.key.length + (write.value?.length ?? 0) + 32;
      }
    }
    return result;
  }

  private withMaintenance<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(fn, fn);
    this.maintenance = run.catch(() => undefined);
    return run;
  }

  /**
   * Rewrites the state into a compact new file and swaps it in, giving the
   * space of freed pages back to the file system (LMDB only reuses them in
   * place). Writes are never held back while the bulk is copied:
   *  1. from now on every committed write is also journaled in memory;
   *  2. the live data is copied in key order into a new environment
   *     (copyCompactly: one read transaction that starts after the journal
   *     did, committed in batches with yields between them), so the copy
   *     holds a prefix of the journal; the copy is then fsynced;
   *  3. the journal is replayed into the copy in batches, between other
   *     work, until little is left. Replaying a write the copy already holds
   *     is harmless: every journaled write is a blind put or delete of a
   *     whole value, so replaying them in commit order ends in the same state;
   *  4. one synchronous step (nothing else runs on the event loop, so no
   *     write can slip between): replay the rest, fsync the copy, flip
   *     CURRENT to it, and switch the store over. That step is the pause.
   * A crash before the flip leaves the old generation in force (the copy is
   * a leftover removed at the next open); after it, the copy is complete.
   */
  defragment(options: { signal?: AbortSignal } = {}): Promise<DefragmentResult> {
    assert(!this.closed, "lmdb kv store used after close");
    return this.withMaintenance(() => this.defragmentNow(options.signal));
  }

  private async defragmentNow(signal: AbortSignal | undefined): Promise<DefragmentResult> {
    if (this.closed) throw new DefragmentError("the store was closed before the defragmentation started");
    const started = performance.now();
    const fileBytesBefore = fileSize(this.environment.path);
    const nextGeneration = this.generation + 1;
    const nextName = generationName(nextGeneration);
    const nextPath = join(this.directory, nextName);
    removeGeneration(this.directory, nextName);
    const journal: Journal = { writes: [], bytes: 0 };
    this.journal = journal;
    let staging: Environment | null = null;
    let swapped = false;
    try {
      staging = openEnvironment(nextPath, this.syncMode);
      await copyCompactly(this.environment, staging, () => {
        this.checkDefragmentLimits(journal, signal);
        if (this.closed) throw new DefragmentError("the store was closed during the defragmentation");
      });
      await fsyncFile(nextPath);
      let replayed = 0;
      let rounds = 0;
      // Replays in batches, yielding between them, until at most `left` writes remain.
      const catchUp = async (left: number): Promise<void> => {
        while (journal.writes.length - replayed > left) {
          if (++rounds > DEFRAGMENT_CATCH_UP_ROUNDS_MAX) throw new DefragmentError(`writes keep outpacing the catch-up (${journal.writes.length - replayed} left after ${rounds - 1} batches)`);
          const end = Math.min(journal.writes.length, replayed + DEFRAGMENT_REPLAY_BATCH_OPS);
          replayWrites(staging!, journal.writes, replayed, end);
          replayed = end;
          this.checkDefragmentLimits(journal, signal);
          await yieldToEventLoop();
          if (this.closed) throw new DefragmentError("the store was closed during the defragmentation");
        }
      };
      await catchUp(DEFRAGMENT_FINAL_JOURNAL_OPS_MAX);
      // Flush the catch-up now, so the pause below only syncs the last few writes.
      await flushEnvironment(staging, this.syncMode);
      await catchUp(DEFRAGMENT_FINAL_JOURNAL_OPS_MAX);
      signal?.throwIfAborted();

      // ---- the pause: synchronous from here to the switch.
      const pauseStarted = performance.now();
      replayWrites(staging, journal.writes, replayed, journal.writes.length);
      fsyncFileSync(nextPath);
      writeFileAtomically(this.directory, CURRENT_FILE, `${nextName}\n`);
      swapped = true;
      const previous = this.environment;
      const previousName = generationName(this.generation);
      this.environment = staging;
      this.generation = nextGeneration;
      this.journal = null;
      const pauseMs = performance.now() - pauseStarted;
      // ---- writes go to the new generation from here on.

      await previous.root.close();
      removeGeneration(this.directory, previousName);
      return { fileBytesBefore, fileBytesAfter: fileSize(nextPath), pauseMs, journaledWrites: journal.writes.length, totalMs: performance.now() - started };
    } catch (error) {
      if (!swapped) {
        this.journal = null;
        if (staging) await staging.root.close();
        removeGeneration(this.directory, nextName);
      }
      throw error;
    }
  }

  private checkDefragmentLimits(journal: Journal, signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
    if (journal.bytes > DEFRAGMENT_JOURNAL_BYTES_MAX) {
      throw new DefragmentError(`more than ${DEFRAGMENT_JOURNAL_BYTES_MAX} bytes were written while the copy ran; try again when the write load is lower`);
    }
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
    // A defragmentation that swaps generations meanwhile fsyncs the new one before the swap, so the old one is enough.
    await flushEnvironment(this.environment, this.syncMode);
  }

  /**
   * Replaces the whole state with a snapshot stream, atomically: the new
   * generation is written and synced beside the old one and CURRENT is
   * flipped last. A damaged or truncated stream leaves the old state in
   * place (and removes the partial new one). Call mvcc.reload() afterwards.
   * `crashAt` is for tests: it stops right after that step, as a crash would.
   */
  installSnapshot(stream: AsyncIterable<Uint8Array>, options: { crashAt?: InstallStep } = {}): Promise<SnapshotHeader> {
    assert(!this.closed, "lmdb kv store used after close");
    return this.withMaintenance(() => this.installSnapshotNow(stream, options));
  }

  private async installSnapshotNow(stream: AsyncIterable<Uint8Array>, options: { crashAt?: InstallStep }): Promise<SnapshotHeader> {
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
      // A defragmentation or install in progress finishes first: LMDB's copy thread must not outlive the environment.
      await this.maintenance;
      if (this.closed) return;
      await this.flushed();
      this.closed = true;
      await this.environment.root.close();
    })();
    return this.closing;
  }
}

/**
 * Copies every table of `source`, as of one read transaction, into the empty
 * `target` in key order with LMDB's append mode, which fills each page
 * completely: the result holds the live data and no free pages. Batches of
 * DEFRAGMENT_COPY_BATCH_BYTES are committed one at a time, yielding between
 * them so writes to `source` go on (and are journaled by the caller).
 * `between` runs after every batch and may throw to give up.
 *
 * We copy ourselves rather than through LMDB's compacting copy
 * (mdb_env_copy2 with MDB_CP_COMPACT): with lmdb 3.5.6 a write into such a
 * copy failed inside the page allocator ("Invalid zero size key" in the free
 * list, MDB_BAD_VALSIZE), and lmdb 2.x leaves compaction out of backup()
 * because of copies that came out corrupt (lmdb-js issue 198).
 */
async function copyCompactly(source: Environment, target: Environment, between: () => void): Promise<void> {
  const transaction = source.root.useReadTransaction();
  try {
    for (let table = 0; table < source.tables.length; table++) {
      let after: Uint8Array | null = null;
      for (;;) {
        let bytes = 0;
        let last: Uint8Array | null = null;
        target.root.transactionSync(() => {
          const query = { transaction, ...(after === null ? {} : { start: after, exclusiveStart: true }) };
          for (const { key, value } of source.tables[table].getRange(query as object)) {
            target.tables[table].putSync(key as Uint8Array, value as Uint8Array, { append: true } as never);
            bytes += (key as Uint8Array).length + (value as Uint8Array).length;
            last = key as Uint8Array;
            if (bytes >= DEFRAGMENT_COPY_BATCH_BYTES) break;
          }
        });
        if (last === null) break;
        after = last;
        between();
        await yieldToEventLoop();
      }
    }
  } finally {
    transaction.done();
  }
}

function replayWrites(environment: Environment, writes: readonly JournaledWrite[], from: number, to: number): void {
  if (from >= to) return;
  environment.root.transactionSync(() => {
    for (let position = from; position < to; position++) {
      const write = writes[position];
      if (write.value === null) environment.tables[write.table].removeSync(write.key);
      else environment.tables[write.table].putSync(write.key, write.value);
    }
  });
}

async function flushEnvironment(environment: Environment, syncMode: LmdbSyncMode): Promise<void> {
  if (syncMode === "commit") {
    await environment.root.flushed;
    return;
  }
  const sync = (environment.root as unknown as { sync(callback: (error?: Error) => void): void }).sync.bind(environment.root);
  await new Promise<void>((resolve, reject) => sync((error) => (error ? reject(error) : resolve())));
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** fsync through a descriptor of our own: it flushes every dirty page of the file, whoever wrote it. */
function fsyncFileSync(path: string): void {
  const descriptor = openSync(path, "r+");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await openFile(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function* rangeOf(table: Database<Uint8Array, Uint8Array>, options: KvRangeOptions): Generator<KvEntry> {
  // lmdb walks backwards from `start` (inclusive) down to `end` (exclusive); our reverse is [start, end) from the top.
  const query: Record<string, unknown> = options.reverse
    ? { reverse: true, ...(options.end !== undefined ? { start: options.end, exclusiveStart: true } : {}), ...(options.start !== undefined ? { end: options.start, inclusiveEnd: true } : {}) }
    : { ...(options.start !== undefined ? { start: options.start } : {}), ...(options.end !== undefined ? { end: options.end } : {}) };
  for (const { key, value } of table.getRange(query)) yield { key: key as Uint8Array, value: value as Uint8Array };
}
