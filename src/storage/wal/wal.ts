/**
 * The node-wide write-ahead log: one log shared by every Raft group on the
 * node, so one fdatasync covers a batch of appends from all of them.
 *
 * Writes. append() encodes its records straight into the batch buffer being
 * filled (CRC computed once, while encoding) and returns that batch's promise.
 * One batch at a time is written and fdatasync'ed; appends that arrive while
 * it is in flight fill the next batch, which goes out as soon as the disk is
 * free: batching by arrival, never by a timer. The first append after an idle
 * period starts a batch on the next microtask, so appends made in the same
 * turn of the event loop share it.
 *
 * Reads. Each group keeps, in memory, the term and on-disk place of every
 * entry still in its log, and a cache of its recent tail (bounded node-wide).
 * Reads are synchronous, for the Raft core: the tail from the cache, older
 * entries from the segment files (their record's CRC checked again).
 *
 * Space. Segments rotate at about `segmentBytes` (a batch that would likely
 * overflow opens the next one; a batch larger than a segment just makes its
 * segment longer); the next one is prepared in the background (header, zeros
 * to its full size, fdatasync) and renamed into place when needed. Each
 * segment begins with a checkpoint of every group (hard state, marker, log
 * range and terms), so a segment is deleted as soon as no group has entries
 * in it: idle groups' hard states and markers pin nothing old.
 *
 * Recovery, on open: every record of every segment is read and checked. A
 * bad record in the last segment followed by nothing but zeros or the end of
 * the file (counting from where its length says it ends, and with no whole
 * record anywhere after it) is a torn write: it is cut off (zeroed on disk)
 * and logged. A bad or impossible record anywhere else refuses to open with an
 * error naming the file and byte offset; `repair: true` cuts there instead and
 * reports the loss.
 *
 * On-disk format: see record-codec.ts.
 */
import { posix } from "node:path";
import { assert } from "../../lib/assert.js";
import type { ClusterId, GroupId, NodeId } from "../../lib/ids.js";
import { limits } from "../../lib/limits.js";
import type { Entry, EntryType, HardState, SnapshotMetadata } from "../../raft/types.js";
import { FileNotFoundError, type FileHandle, type FileSystem } from "../fs/file-system.js";
import {
  FORMAT_VERSION, RECORD_HEADER_BYTES, RecordFormatError, RecordType, SEGMENT_HEADER_BYTES,
  claimedRecordEnd, decodeEntriesLayout, decodeEntry, decodeHardState, decodeSegmentHeader, decodeSnapshotMarker,
  checkpointRecordBytes, decodeCheckpoint, encodeCheckpointRecord,
  encodeEntriesRecord, encodeHardStateRecord, encodeSegmentHeader, encodeSnapshotMarkerRecord, entriesRecordBytes,
  isSegmentHeader, readRecordHeader, snapshotMarkerRecordBytes, HARD_STATE_PAYLOAD_BYTES,
} from "./record-codec.js";
import {
  WalClosedError, WalCompactedError, WalCorruptionError, WalFailedError, WalIdentityError, WalInvalidAppendError,
  WalMissingSegmentError, WalNotASegmentError, WalUnavailableError, WalVersionError,
} from "./errors.js";
import { GroupLog, type GroupSummary } from "./group-log.js";

/** Size of the batch buffers kept for reuse; a batch that needed more gets a buffer of its own. */
const BATCH_BUFFER_BYTES = 1024 * 1024;
/** Zeros written, then fdatasync'ed, per step while preallocating a segment. */
const PREALLOCATE_CHUNK_BYTES = 128 * 1024;
/** Under load a prepared segment gets this many bytes of zeros per byte of batches written. */
const ZERO_FILL_PACE = 2;
/** The cache is trimmed to this fraction of its limit once it goes over, so trimming is not done on every append. */
const CACHE_TRIM_FRACTION = 7 / 8;
const SEGMENT_NAME = /^(\d{16})\.wal$/;
const TEMPORARY_SUFFIX = ".tmp";

/** Per batch: the groups it holds entries of (slots 0..count-1) and each one's index range. */
interface TouchedGroups {
  readonly groups: GroupLog[];
  readonly lows: number[];
  readonly highs: number[];
  count: number;
}

export type WalRecord =
  | { readonly type: "entries"; readonly group: GroupId; readonly entries: readonly Entry[] }
  | { readonly type: "hardState"; readonly group: GroupId; readonly hardState: HardState }
  /** A compaction point or an installed snapshot: the log now starts after metadata.index. */
  | { readonly type: "snapshot"; readonly group: GroupId; readonly metadata: SnapshotMetadata };

export interface WalLogger {
  warn(message: string): void;
  info(message: string): void;
}

/** Planted faults for testing the tests; production never sets them. */
export interface WalFaults {
  /** Resolve append() once its batch is written but before the fdatasync. */
  readonly acknowledgeBeforeSync?: boolean;
}

export interface WalOptions {
  readonly fileSystem: FileSystem;
  readonly directory: string;
  readonly clusterId: ClusterId;
  readonly nodeId: NodeId;
  /** Rotation size (default limits.walSegmentBytes). */
  readonly segmentBytes?: number;
  /** Node-wide bytes of cached recent entries (default limits.walCacheBytesMax). */
  readonly cacheBytesMax?: number;
  /** Cut at the first bad record instead of refusing to open (the --wal-repair flag). */
  readonly repair?: boolean;
  readonly logger?: WalLogger;
  readonly faults?: WalFaults;
}

export interface WalStats {
  /** append() calls that were written. */
  readonly appends: number;
  readonly records: number;
  /** Batches written, each with exactly one fdatasync. */
  readonly syncs: number;
  readonly bytesWritten: number;
  readonly appendsPerSyncMax: number;
  readonly rotations: number;
  readonly segmentsDeleted: number;
  /** Entries read from segment files rather than the cache. */
  readonly fileReads: number;
  readonly cacheBytes: number;
}

export interface TailCut {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  /** Bytes from the cut to the last non-zero byte of that segment. */
  readonly bytesDropped: number;
  /** Whole later segments removed (repair only). */
  readonly segmentsDropped: readonly string[];
}

export interface RecoveryReport {
  readonly groups: ReadonlyMap<GroupId, GroupSummary>;
  readonly segments: number;
  readonly records: number;
  /** A torn write at the end of the last segment, cut off. */
  readonly tornTail: TailCut | null;
  /** What `repair` cut, when it had to. */
  readonly repaired: TailCut | null;
}

interface Segment {
  readonly sequence: number;
  readonly path: string;
  readonly handle: FileHandle;
}

interface Batch {
  readonly number: number;
  buffer: Buffer;
  length: number;
  appends: number;
  records: number;
  /** The groups this batch holds entries of, with the index range of each (settled once written). */
  readonly touched: TouchedGroups;
  hasMarker: boolean;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  // Set by placeBatch():
  segment: number;
  baseOffset: number;
  rotate: boolean;
  purgeBelow: number | null;
}

const silentLogger: WalLogger = { warn: () => {}, info: () => {} };
export const stderrLogger: WalLogger = {
  warn: (message) => process.stderr.write(`wal: ${message}\n`),
  info: () => {},
};

export class Wal {
  readonly directory: string;
  private readonly fileSystem: FileSystem;
  private readonly segmentBytes: number;
  private readonly cacheBytesMax: number;
  private readonly logger: WalLogger;
  private readonly faults: WalFaults;

  private readonly groups = new Map<GroupId, GroupLog>();
  private readonly segments = new Map<number, Segment>();
  private current!: Segment;
  /** Where the next batch goes in the segment of the last placed batch. */
  private writeOffset = SEGMENT_HEADER_BYTES;
  /** Segment of the last placed batch (ahead of `current` while a rotation is under way). */
  private placedSegment = 0;
  /** Size of the last placed batch: the guess of the next one's, for deciding on rotation. */
  private lastBatchBytes = 0;
  private preparing: Promise<Segment> | null = null;
  private purging: Promise<void> = Promise.resolve();

  private filling: Batch | null = null;
  private batchNumber = 0;
  private spareBuffers: Buffer[] = [];
  private spareTouched: TouchedGroups[] = [];
  private flushRunning = false;
  /** Batch bytes written since the segment being prepared last wrote zeros, and its waiter (see paceZeroFill). */
  private bytesSinceZeros = 0;
  private zeroFillWaiter: (() => void) | null = null;
  /** A rotation is waiting for the segment being prepared: no more pacing. */
  private rotationWaiting = false;
  private idleWaiters: Array<() => void> = [];
  private failure: unknown = null;
  private closing: Promise<void> | null = null;
  private cacheBytes = 0;
  private counters = { appends: 0, records: 0, syncs: 0, bytesWritten: 0, appendsPerSyncMax: 0, rotations: 0, segmentsDeleted: 0, fileReads: 0 };
  private report!: RecoveryReport;
  private readonly scratchTerms: number[] = [];
  private readonly scratchTypes: EntryType[] = [];
  private readonly scratchOffsets: number[] = [];
  /** Recovery: past the oldest segment, a checkpoint can no longer introduce a group. */
  private firstSegmentScanned = false;

  private constructor(private readonly options: WalOptions) {
    this.directory = options.directory;
    this.fileSystem = options.fileSystem;
    this.segmentBytes = options.segmentBytes ?? limits.walSegmentBytes;
    this.cacheBytesMax = options.cacheBytesMax ?? limits.walCacheBytesMax;
    this.logger = options.logger ?? silentLogger;
    this.faults = options.faults ?? {};
    assert(this.segmentBytes >= SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES, "segment size too small for a header and a record");
  }

  /** Opens (recovering) or creates the WAL in `options.directory`. */
  static async open(options: WalOptions): Promise<Wal> {
    const wal = new Wal(options);
    await wal.start();
    return wal;
  }

  /** What recovery found when this WAL was opened. */
  get recovery(): RecoveryReport {
    return this.report;
  }

  // ------------------------------------------------------------------ appends

  /**
   * Appends records for any groups; resolves once they are durable. Entries
   * starting at an index at or below the group's last index replace the tail
   * from there (Raft's conflicting suffix). Breaking the log rules throws
   * WalInvalidAppendError at once; records before the offending one in the
   * same call are kept. New state is visible to reads immediately.
   */
  append(records: readonly WalRecord[]): Promise<void> {
    if (this.closing) throw new WalClosedError();
    if (this.failure) return Promise.reject(new WalFailedError({ cause: this.failure }));
    if (records.length === 0) return Promise.resolve();
    const batch = this.filling ?? (this.filling = this.newBatch());
    try {
      for (const record of records) this.acceptRecord(batch, record);
      batch.appends++;
    } finally {
      // Records accepted before an invalid one are in the batch and must still be written.
      if (batch.length > 0) this.startFlush();
    }
    if (this.cacheBytes > this.cacheBytesMax) this.trimCache();
    return batch.promise;
  }

  private acceptRecord(batch: Batch, record: WalRecord): void {
    const group = this.groupLog(record.group, true);
    switch (record.type) {
      case "entries": return this.acceptEntries(batch, group, record.entries);
      case "hardState": return this.acceptHardState(batch, group, record.hardState);
      case "snapshot": return this.acceptSnapshotMarker(batch, group, record.metadata);
    }
  }

  private acceptEntries(batch: Batch, group: GroupLog, entries: readonly Entry[]): void {
    if (entries.length === 0) throw new WalInvalidAppendError(`group ${group.group}: an entries record needs at least one entry`);
    const firstIndex = entries[0].index;
    // Scratch arrays reused by every append: the group log copies what it keeps, so the hot path allocates
    // nothing here. Only their first entries.length slots count; they are overwritten, never shortened
    // (setting an array's length to 0 frees its backing store, and the next write allocates a new one).
    const terms = this.scratchTerms;
    const types = this.scratchTypes;
    const entryOffsets = this.scratchOffsets;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k];
      if (entry.index !== firstIndex + k) throw new WalInvalidAppendError(`group ${group.group}: entry indexes are not contiguous at ${entry.index}`);
      if (!Number.isSafeInteger(entry.term) || entry.term < 1) throw new WalInvalidAppendError(`group ${group.group}: entry ${entry.index} has invalid term ${entry.term}`);
      if (entry.type !== 0 && entry.type !== 1) throw new WalInvalidAppendError(`group ${group.group}: entry ${entry.index} has unknown type ${String(entry.type)}`);
      terms[k] = entry.term;
      types[k] = entry.type;
    }
    if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) throw new WalInvalidAppendError(`group ${group.group}: invalid first index ${firstIndex}`);
    const bytes = entriesRecordBytes(entries);
    if (bytes - RECORD_HEADER_BYTES > limits.walRecordBytesMax) {
      throw new WalInvalidAppendError(`group ${group.group}: ${bytes} bytes of entries exceed the record limit of ${limits.walRecordBytesMax}`);
    }
    const reason = group.checkEntries(firstIndex, terms, entries.length);
    if (reason) throw new WalInvalidAppendError(`group ${group.group}: ${reason}`);
    this.reserve(batch, bytes);
    const recordOffset = batch.length;
    batch.length = encodeEntriesRecord(batch.buffer, recordOffset, group.group, entries, entryOffsets);
    const cachedBefore = group.cacheBytes;
    group.appendEntries(firstIndex, terms, types, -batch.number, recordOffset, entryOffsets, entries);
    this.cacheBytes += group.cacheBytes - cachedBefore;
    const touched = batch.touched;
    const lastIndex = firstIndex + entries.length - 1;
    if (group.touchedBatch === batch.number) {
      const slot = group.touchedSlot;
      touched.lows[slot] = Math.min(touched.lows[slot], firstIndex);
      touched.highs[slot] = Math.max(touched.highs[slot], lastIndex);
    } else {
      const slot = touched.count++;
      group.touchedBatch = batch.number;
      group.touchedSlot = slot;
      touched.groups[slot] = group;
      touched.lows[slot] = firstIndex;
      touched.highs[slot] = lastIndex;
    }
    batch.records++;
  }

  private acceptHardState(batch: Batch, group: GroupLog, hardState: HardState): void {
    if (!Number.isSafeInteger(hardState.term) || hardState.term < 0 || !Number.isSafeInteger(hardState.commit) || hardState.commit < 0) {
      throw new WalInvalidAppendError(`group ${group.group}: invalid hard state term ${hardState.term} commit ${hardState.commit}`);
    }
    const reason = group.checkHardState(hardState);
    if (reason) throw new WalInvalidAppendError(`group ${group.group}: ${reason}`);
    this.writeHardState(batch, group, hardState);
  }

  private writeHardState(batch: Batch, group: GroupLog, hardState: HardState): void {
    this.reserve(batch, RECORD_HEADER_BYTES + HARD_STATE_PAYLOAD_BYTES);
    batch.length = encodeHardStateRecord(batch.buffer, batch.length, group.group, hardState);
    group.setHardState(hardState);
    batch.records++;
  }

  private acceptSnapshotMarker(batch: Batch, group: GroupLog, metadata: SnapshotMetadata): void {
    if (!Number.isSafeInteger(metadata.index) || metadata.index < 0 || !Number.isSafeInteger(metadata.term) || metadata.term < 0) {
      throw new WalInvalidAppendError(`group ${group.group}: invalid snapshot marker index ${metadata.index} term ${metadata.term}`);
    }
    const reason = group.checkSnapshotMarker(metadata);
    if (reason) throw new WalInvalidAppendError(`group ${group.group}: ${reason}`);
    this.writeSnapshotMarker(batch, group, metadata);
  }

  private writeSnapshotMarker(batch: Batch, group: GroupLog, metadata: SnapshotMetadata): void {
    this.reserve(batch, snapshotMarkerRecordBytes(metadata));
    batch.length = encodeSnapshotMarkerRecord(batch.buffer, batch.length, group.group, metadata);
    const cachedBefore = group.cacheBytes;
    group.setSnapshotMarker(metadata);
    this.cacheBytes += group.cacheBytes - cachedBefore;
    batch.hasMarker = true;
    batch.records++;
  }

  /**
   * Starts the next batch and decides where it goes: a batch that would
   * likely overflow the current segment (judged by the size of the one before
   * it) opens the next segment instead. Every segment's first batch begins
   * with a checkpoint of every group, written now, while the groups' state is
   * exactly what the segments before hold.
   */
  private newBatch(): Batch {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    const batch: Batch = {
      number: ++this.batchNumber,
      buffer: this.spareBuffers.pop() ?? Buffer.allocUnsafe(BATCH_BUFFER_BYTES),
      length: 0, appends: 0, records: 0,
      touched: this.spareTouched.pop() ?? { groups: [], lows: [], highs: [], count: 0 }, hasMarker: false,
      promise, resolve, reject,
      segment: 0, baseOffset: 0, rotate: false, purgeBelow: null,
    };
    batch.rotate = this.writeOffset > SEGMENT_HEADER_BYTES && this.writeOffset + this.lastBatchBytes >= this.segmentBytes;
    if (batch.rotate || this.writeOffset === SEGMENT_HEADER_BYTES) this.writeCheckpoints(batch);
    return batch;
  }

  private writeCheckpoints(batch: Batch): void {
    for (const group of this.groups.values()) {
      if (group.empty) continue;
      const checkpoint = group.checkpoint();
      this.reserve(batch, checkpointRecordBytes(checkpoint));
      batch.length = encodeCheckpointRecord(batch.buffer, batch.length, group.group, checkpoint);
      batch.records++;
    }
  }

  private reserve(batch: Batch, bytes: number): void {
    if (batch.length + bytes <= batch.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(batch.length + bytes, batch.buffer.length * 2));
    batch.buffer.copy(grown, 0, 0, batch.length);
    batch.buffer = grown;
  }

  // ------------------------------------------------------------------ the write loop

  private startFlush(): void {
    if (this.flushRunning) return;
    this.flushRunning = true;
    queueMicrotask(() => void this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    while (this.filling && !this.failure) {
      const batch = this.filling;
      this.filling = null;
      if (batch.length === 0) {
        batch.resolve();
        continue;
      }
      try {
        this.placeBatch(batch);
        await this.writeBatch(batch);
      } catch (error) {
        this.fail(error);
        batch.reject(new WalFailedError({ cause: error }));
      }
    }
    if (this.failure && this.filling) {
      this.filling.reject(new WalFailedError({ cause: this.failure }));
      this.filling = null;
    }
    this.flushRunning = false;
    this.zeroFillWaiter?.();
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * Fixes, synchronously as the batch is taken (so before anything else can
   * be appended), the segment and offset the batch was headed for when it
   * started.
   */
  private placeBatch(batch: Batch): void {
    const segment = batch.rotate ? this.placedSegment + 1 : this.placedSegment;
    const offset = batch.rotate ? SEGMENT_HEADER_BYTES : this.writeOffset;
    batch.segment = segment;
    batch.baseOffset = offset;
    this.placedSegment = segment;
    this.writeOffset = offset + batch.length;
    this.lastBatchBytes = batch.length;
    if (batch.rotate || batch.hasMarker) batch.purgeBelow = Math.min(this.segmentsNeededFrom(), segment);
  }

  /**
   * The oldest segment any group still needs: the one holding its first
   * entry. Hard states and markers need no old segment, since every segment
   * starts with a checkpoint of them.
   */
  private segmentsNeededFrom(): number {
    let needed = Number.POSITIVE_INFINITY;
    for (const group of this.groups.values()) {
      // Negative values are batches not yet placed: they land in the current segment or later.
      const segment = group.firstEntrySegment() ?? 0;
      if (segment > 0 && segment < needed) needed = segment;
    }
    return needed;
  }

  private async writeBatch(batch: Batch): Promise<void> {
    if (batch.rotate) await this.rotate(batch.segment);
    assert(this.current.sequence === batch.segment, "batch placed in a segment that is not the current one");
    const handle = this.current.handle;
    await handle.write(batch.buffer.subarray(0, batch.length), batch.baseOffset);
    // The bytes are in the file now (page cache or overlay), so entries can be read from there.
    const touched = batch.touched;
    for (let slot = 0; slot < touched.count; slot++) {
      touched.groups[slot].settleLocations(batch.number, touched.lows[slot], touched.highs[slot], batch.segment, batch.baseOffset);
    }
    // Reused by a later batch: the arrays keep their backing stores (count, not length, says what is valid).
    touched.count = 0;
    if (this.spareTouched.length < 2) this.spareTouched.push(touched);
    if (this.faults.acknowledgeBeforeSync) batch.resolve();
    await handle.sync();
    this.counters.syncs++;
    this.counters.appends += batch.appends;
    this.counters.records += batch.records;
    this.counters.bytesWritten += batch.length;
    this.bytesSinceZeros += batch.length;
    if (this.zeroFillWaiter && this.bytesSinceZeros >= PREALLOCATE_CHUNK_BYTES / ZERO_FILL_PACE) this.zeroFillWaiter();
    if (batch.appends > this.counters.appendsPerSyncMax) this.counters.appendsPerSyncMax = batch.appends;
    if (batch.buffer.length === BATCH_BUFFER_BYTES && this.spareBuffers.length < 2) this.spareBuffers.push(batch.buffer);
    batch.resolve();
    if (batch.purgeBelow !== null) this.startPurge(batch.purgeBelow);
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error;
    this.logger.warn(`write failed, refusing all further appends: ${String((error as Error)?.message ?? error)}`);
  }

  // ------------------------------------------------------------------ segments

  private segmentPath(sequence: number): string {
    return posix.join(this.directory, `${String(sequence).padStart(16, "0")}.wal`);
  }

  /** Writes a segment under a temporary name: header, zeros up to the rotation size, fdatasync. */
  private async prepareSegment(sequence: number): Promise<Segment> {
    const path = this.segmentPath(sequence);
    const handle = await this.fileSystem.open(path + TEMPORARY_SUFFIX, { create: true });
    await handle.truncate(0);
    const zeros = Buffer.alloc(Math.min(PREALLOCATE_CHUNK_BYTES, this.segmentBytes));
    for (let at = SEGMENT_HEADER_BYTES; at < this.segmentBytes; at += zeros.length) {
      await handle.write(zeros.subarray(0, Math.min(zeros.length, this.segmentBytes - at)), at);
      // Flush in slices: one fdatasync of a whole segment's zeros holds the disk for tens of
      // milliseconds, and every batch sync issued meanwhile waits behind it (the append p99).
      await handle.sync();
      await this.paceZeroFill(at + zeros.length);
    }
    await handle.write(encodeSegmentHeader(this.options.clusterId, this.options.nodeId, sequence), 0);
    await handle.sync();
    return { sequence, path, handle };
  }

  /**
   * Under load, zeros go out at ZERO_FILL_PACE times the rate batches are
   * written, not flat out: a burst of zeros saturates the disk for a few hundred
   * milliseconds after each rotation, and every batch sync issued then waits.
   * Paced, the next segment is still ready long before the current one fills.
   * An idle WAL, or a current segment past three quarters, gets zeros at once.
   */
  private paceZeroFill(preparedBytes: number): Promise<void> | void {
    this.bytesSinceZeros = 0;
    if (!this.flushRunning || this.rotationWaiting || this.writeOffset >= this.segmentBytes * 0.75 || preparedBytes >= this.segmentBytes) return;
    // Released by the batches written (writeBatch) or by the write loop going idle (flushLoop): no timer,
    // so a simulated disk stays deterministic.
    return new Promise<void>((resolve) => {
      this.zeroFillWaiter = () => {
        this.zeroFillWaiter = null;
        resolve();
      };
    });
  }

  private prepareNext(): void {
    const preparing = this.prepareSegment(this.current.sequence + 1);
    preparing.catch(() => {}); // observed when awaited in rotate()
    this.preparing = preparing;
  }

  /** Renames the prepared segment into place (durably) and makes it current. */
  private async install(segment: Segment): Promise<void> {
    await this.fileSystem.rename(segment.path + TEMPORARY_SUFFIX, segment.path);
    await this.fileSystem.syncDirectory(this.directory);
    this.segments.set(segment.sequence, segment);
    this.current = segment;
  }

  private async rotate(sequence: number): Promise<void> {
    assert(this.preparing, "no segment being prepared");
    // The batches that would release a paced preparation wait for this rotation: release it for good.
    this.rotationWaiting = true;
    this.zeroFillWaiter?.();
    let segment: Segment;
    try {
      segment = await this.preparing;
    } finally {
      this.rotationWaiting = false;
    }
    assert(segment.sequence === sequence, () => `prepared segment ${segment.sequence}, needed ${sequence}`);
    await this.install(segment);
    this.counters.rotations++;
    this.prepareNext();
  }

  private startPurge(below: number): void {
    this.purging = this.purging.then(() => this.purge(below));
  }

  /** Deletes, oldest first, the segments below `below` (so a crash midway leaves a contiguous run). */
  private async purge(below: number): Promise<void> {
    const doomed = [...this.segments.keys()].filter((sequence) => sequence < below && sequence !== this.current.sequence).sort((a, b) => a - b);
    if (doomed.length === 0) return;
    try {
      for (const sequence of doomed) {
        const segment = this.segments.get(sequence);
        if (!segment) continue;
        this.segments.delete(sequence);
        await segment.handle.close();
        await this.fileSystem.unlink(segment.path);
        this.counters.segmentsDeleted++;
      }
      await this.fileSystem.syncDirectory(this.directory);
    } catch (error) {
      // A segment left behind costs space, not safety: it is deleted at a later purge or start.
      this.logger.warn(`could not delete old segments: ${String((error as Error)?.message ?? error)}`);
    }
  }

  // ------------------------------------------------------------------ reads

  /** Groups with anything recorded (hard state, marker or entries). */
  groupIds(): GroupId[] {
    return [...this.groups.values()].filter((group) => !group.empty).map((group) => group.group).sort((a, b) => a - b);
  }

  firstIndex(group: GroupId): number {
    return this.groups.get(group)?.firstIndex ?? 1;
  }

  lastIndex(group: GroupId): number {
    return this.groups.get(group)?.lastIndex ?? 0;
  }

  hardState(group: GroupId): HardState | null {
    return this.groups.get(group)?.hardState ?? null;
  }

  snapshotMetadata(group: GroupId): SnapshotMetadata | null {
    return this.groups.get(group)?.snapshot ?? null;
  }

  /** The term of the entry at `index`, for index in [firstIndex - 1, lastIndex] (the marker's term at firstIndex - 1). */
  term(group: GroupId, index: number): number {
    const log = this.groupLog(group, false);
    const term = log.term(index);
    if (term !== undefined) return term;
    if (index < log.firstIndex) throw new WalCompactedError(group, index, log.firstIndex);
    throw new WalUnavailableError(group, index, log.lastIndex);
  }

  /** Entries [low, high): at least one if low < high, then stopping before their data would exceed bytesMax. */
  entries(group: GroupId, low: number, high: number, bytesMax = Number.POSITIVE_INFINITY): Entry[] {
    const log = this.groupLog(group, false);
    if (low < log.firstIndex) throw new WalCompactedError(group, low, log.firstIndex);
    if (high > log.lastIndex + 1) throw new WalUnavailableError(group, high - 1, log.lastIndex);
    if (high < low) throw new RangeError(`entries(${low}, ${high}): high below low`);
    const result: Entry[] = [];
    const reader = new RecordReader(this, log);
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = log.cached(index) ?? reader.read(index);
      bytes += entry.data.length;
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    this.counters.fileReads += reader.reads;
    return result;
  }

  /** @internal for RecordReader */
  segmentHandle(sequence: number): Segment {
    const segment = this.segments.get(sequence);
    assert(segment, () => `segment ${sequence} needed for a read is gone`);
    return segment;
  }

  stats(): WalStats {
    return { ...this.counters, cacheBytes: this.cacheBytes };
  }

  private groupLog(group: GroupId, create: boolean): GroupLog {
    let log = this.groups.get(group);
    if (!log) {
      log = new GroupLog(group);
      if (create) this.groups.set(group, log);
    }
    return log;
  }

  private trimCache(): void {
    const target = this.cacheBytesMax * CACHE_TRIM_FRACTION;
    while (this.cacheBytes > target) {
      let largest: GroupLog | null = null;
      for (const group of this.groups.values()) if (group.cachedCount > 0 && (!largest || group.cacheBytes > largest.cacheBytes)) largest = group;
      if (!largest) return;
      const before = largest.cacheBytes;
      largest.evictCache(Math.max(1, Math.ceil(largest.cachedCount / 4)));
      this.cacheBytes += largest.cacheBytes - before;
      // Only entries of batches still being written are left: they cannot go yet.
      if (largest.cacheBytes === before) return;
    }
  }

  // ------------------------------------------------------------------ lifetime

  /** Resolves once no batch is being written or waiting, no segment being prepared and no purge running. */
  async settled(): Promise<void> {
    while (this.flushRunning) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.purging;
    if (this.preparing) await this.preparing.catch(() => {});
  }

  /** Writes what was appended, then closes every file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  closed(): Promise<void> {
    return this.closing ?? new Promise<void>(() => {});
  }

  private async closeNow(): Promise<void> {
    await this.settled();
    const prepared = this.preparing ? await this.preparing.catch(() => null) : null;
    if (prepared) await prepared.handle.close();
    for (const segment of this.segments.values()) await segment.handle.close();
  }

  // ------------------------------------------------------------------ recovery

  private async start(): Promise<void> {
    await this.fileSystem.mkdir(this.directory);
    const names = await this.fileSystem.readdir(this.directory);
    const sequences = names.map((name) => SEGMENT_NAME.exec(name)).filter((match) => match !== null).map((match) => Number(match[1])).sort((a, b) => a - b);
    for (let k = 1; k < sequences.length; k++) {
      if (sequences[k] !== sequences[0] + k) throw new WalMissingSegmentError(this.directory, sequences[0] + k);
    }
    if (sequences.length === 0) {
      await this.install(await this.prepareSegment(1));
      // The directory may be new too: its own name must be durable in its parent.
      await this.fileSystem.syncDirectory(posix.dirname(this.directory));
      this.writeOffset = SEGMENT_HEADER_BYTES;
      this.placedSegment = 1;
      this.report = { groups: new Map(), segments: 0, records: 0, tornTail: null, repaired: null };
    } else {
      this.report = await this.recover(sequences);
      this.placedSegment = this.current.sequence;
    }
    // Removed only once recovery has accepted the WAL: a refused start changes nothing on disk.
    for (const name of names) {
      // A segment still under its temporary name was never installed: nothing in it counts.
      if (name.endsWith(TEMPORARY_SUFFIX) && SEGMENT_NAME.test(name.slice(0, -TEMPORARY_SUFFIX.length))) {
        await this.fileSystem.unlink(posix.join(this.directory, name));
      }
    }
    this.prepareNext();
  }

  private async recover(sequences: readonly number[]): Promise<RecoveryReport> {
    let buffer = Buffer.alloc(0);
    let records = 0;
    let tornTail: TailCut | null = null;
    let repaired: TailCut | null = null;
    for (let k = 0; k < sequences.length; k++) {
      const sequence = sequences[k];
      const path = this.segmentPath(sequence);
      let handle: FileHandle;
      try {
        handle = await this.fileSystem.open(path, { create: false });
      } catch (error) {
        if (error instanceof FileNotFoundError) throw new WalMissingSegmentError(this.directory, sequence);
        throw error;
      }
      const size = handle.size();
      if (buffer.length < size) buffer = Buffer.alloc(size);
      const read = handle.readSync(buffer, 0, size);
      assert(read === size, () => `short read of ${path}: ${read} of ${size} bytes`);
      this.checkSegmentHeader(path, buffer, size, sequence);
      const segment: Segment = { sequence, path, handle };
      this.segments.set(sequence, segment);
      this.current = segment;
      this.firstSegmentScanned = k > 0;
      const scan = this.scanSegment(segment, buffer, size);
      records += scan.records;
      this.writeOffset = scan.end;
      if (!scan.bad) continue;
      const { offset, reason, claimedEnd, formatError } = scan.bad;
      const lastNonZero = findLastNonZero(buffer, offset, size);
      const isLast = k === sequences.length - 1;
      const cut: TailCut = { file: path, offset, reason, bytesDropped: lastNonZero + 1 - offset, segmentsDropped: [] };
      // A torn write leaves a partial record and then the preallocated zeros. A damaged length can make a
      // record in the middle look like that too, so a whole record found further on rules a torn tail out.
      const torn = formatError && isLast && findLastNonZero(buffer, claimedEnd, size) < 0 && !hasRecordAfter(buffer, offset + 1, size);
      if (torn) {
        await this.zeroTail(handle, offset, lastNonZero + 1);
        tornTail = cut;
        this.logger.warn(`cut a torn write off the end of ${path} at byte offset ${offset} (${cut.bytesDropped} bytes): ${reason}`);
        break;
      }
      if (!this.options.repair) throw new WalCorruptionError(path, offset, reason);
      const dropped = sequences.slice(k + 1).map((later) => this.segmentPath(later));
      await this.zeroTail(handle, offset, lastNonZero + 1);
      for (const file of [...dropped].reverse()) await this.fileSystem.unlink(file);
      await this.fileSystem.syncDirectory(this.directory);
      repaired = { ...cut, segmentsDropped: dropped };
      this.logger.warn(`repair: cut ${path} at byte offset ${offset} (${cut.bytesDropped} bytes) and dropped ${dropped.length} later segment(s): ${reason}`);
      break;
    }
    for (const group of this.groups.values()) {
      // Entries known from a checkpoint whose bytes were in a deleted segment must all have been replaced or compacted away.
      if (group.firstEntrySegment() === 0 && group.checkpointOrigin) {
        throw new WalCorruptionError(this.segmentPath(group.checkpointOrigin.segment), group.checkpointOrigin.offset,
          `group ${group.group} still has entries from index ${group.firstIndex} whose segment is gone: history is missing`);
      }
    }
    const groups = new Map<GroupId, GroupSummary>();
    for (const [id, group] of this.groups) groups.set(id, group.summary());
    return { groups, segments: this.segments.size, records, tornTail, repaired };
  }

  private checkSegmentHeader(path: string, buffer: Buffer, size: number, sequence: number): void {
    const header = decodeSegmentHeader(buffer, size);
    if (!isSegmentHeader(header)) {
      switch (header.kind) {
        case "short": throw new WalNotASegmentError(path, `only ${header.length} bytes, shorter than the ${SEGMENT_HEADER_BYTES}-byte header`);
        case "magic": throw new WalNotASegmentError(path, "wrong magic bytes");
        case "version": throw new WalVersionError(path, header.version, FORMAT_VERSION);
        case "crc": throw new WalCorruptionError(path, 0, `segment header CRC mismatch (stored ${header.stored.toString(16)}, computed ${header.computed.toString(16)})`);
        case "reserved": throw new WalCorruptionError(path, 0, "segment header reserved bytes are not zero");
      }
    }
    if (header.clusterId !== this.options.clusterId) throw new WalIdentityError(path, "cluster id", this.options.clusterId, header.clusterId);
    if (header.nodeId !== this.options.nodeId) throw new WalIdentityError(path, "node id", this.options.nodeId, header.nodeId);
    if (header.sequence !== sequence) throw new WalCorruptionError(path, 0, `segment header says sequence ${header.sequence}, the file name says ${sequence}`);
  }

  /** Replays the records of one segment into the group logs, stopping at the end of the data or the first bad record. */
  private scanSegment(segment: Segment, buffer: Buffer, size: number): {
    records: number; end: number;
    bad: { offset: number; reason: string; claimedEnd: number; formatError: boolean } | null;
  } {
    let offset = SEGMENT_HEADER_BYTES;
    let records = 0;
    while (offset < size) {
      if (isZero(buffer, offset, Math.min(offset + RECORD_HEADER_BYTES, size))) {
        const lastNonZero = findLastNonZero(buffer, offset, size);
        if (lastNonZero < 0) break;
        return {
          records, end: offset,
          bad: { offset, reason: `zeros where a record should be, followed by data at offset ${lastNonZero}`, claimedEnd: offset + RECORD_HEADER_BYTES, formatError: true },
        };
      }
      let end: number;
      try {
        const header = readRecordHeader(buffer, offset, size);
        end = offset + RECORD_HEADER_BYTES + header.payloadLength;
        const reason = this.replayRecord(segment.sequence, offset, header.type, header.group, buffer, end);
        if (reason) return { records, end: offset, bad: { offset, reason: `group ${header.group}: ${reason}`, claimedEnd: end, formatError: false } };
      } catch (error) {
        if (!(error instanceof RecordFormatError)) throw error;
        return { records, end: offset, bad: { offset, reason: error.message, claimedEnd: claimedRecordEnd(buffer, offset, size), formatError: true } };
      }
      records++;
      offset = end;
    }
    return { records, end: offset, bad: null };
  }

  /** Applies one verified record; returns why it cannot be where it is, or null. Throws RecordFormatError for a malformed payload. */
  private replayRecord(segment: number, offset: number, type: RecordType, groupId: GroupId, buffer: Buffer, end: number): string | null {
    const payloadStart = offset + RECORD_HEADER_BYTES;
    const group = this.groupLog(groupId, true);
    switch (type) {
      case RecordType.Entries: {
        const layout = decodeEntriesLayout(buffer, payloadStart, end);
        const reason = group.checkEntries(layout.firstIndex, layout.terms);
        if (reason) return reason;
        group.appendEntries(layout.firstIndex, layout.terms, layout.types, segment, offset, layout.entryOffsets);
        return null;
      }
      case RecordType.HardState: {
        const hardState = decodeHardState(buffer, payloadStart, end);
        const reason = group.checkHardState(hardState);
        if (reason) return reason;
        group.setHardState(hardState);
        return null;
      }
      case RecordType.SnapshotMarker: {
        const metadata = decodeSnapshotMarker(buffer, payloadStart, end);
        const reason = group.checkSnapshotMarker(metadata);
        if (reason) return reason;
        group.setSnapshotMarker(metadata);
        return null;
      }
      case RecordType.Checkpoint: {
        const checkpoint = decodeCheckpoint(buffer, payloadStart, end);
        // The oldest segment left introduces each group through its checkpoint; later ones must agree with the records.
        if (!group.empty) return group.checkCheckpoint(checkpoint);
        if (!this.firstSegmentScanned) group.restoreCheckpoint(checkpoint, { segment, offset });
        else if (checkpoint.lastIndex !== 0 || checkpoint.snapshot || checkpoint.hardState) return "checkpoint of a group no earlier record knows";
        return null;
      }
    }
  }

  private async zeroTail(handle: FileHandle, from: number, to: number): Promise<void> {
    if (to > from) await handle.write(Buffer.alloc(to - from), from);
    await handle.sync();
  }
}

/**
 * Reads entries of one group from segment files for one entries() call,
 * keeping the last record read so a run of entries costs one read per record.
 */
class RecordReader {
  reads = 0;
  private segment = 0;
  private recordOffset = -1;
  private record: Buffer | null = null;

  constructor(private readonly wal: Wal, private readonly log: GroupLog) {}

  read(index: number): Entry {
    const location = this.log.location(index);
    assert(location.segment > 0, () => `entry ${index} of group ${this.log.group} is neither cached nor written`);
    if (!this.record || location.segment !== this.segment || location.recordOffset !== this.recordOffset) this.load(location.segment, location.recordOffset);
    this.reads++;
    const record = this.record as Buffer;
    const entry = decodeEntry(record, location.entryOffset - location.recordOffset, index);
    assert(entry.term === this.log.term(index), () => `entry ${index} of group ${this.log.group} read back with term ${entry.term}`);
    return entry;
  }

  private load(sequence: number, recordOffset: number): void {
    const segment = this.wal.segmentHandle(sequence);
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    segment.handle.readSync(header, recordOffset);
    const length = Math.min(header.readUInt32LE(4), limits.walRecordBytesMax);
    const record = Buffer.alloc(RECORD_HEADER_BYTES + length);
    const read = segment.handle.readSync(record, recordOffset);
    try {
      readRecordHeader(record, 0, read);
    } catch (error) {
      // Verified at start, damaged since: the disk is lying, and nothing from it may be served.
      throw new WalCorruptionError(segment.path, recordOffset, `on re-read: ${(error as Error).message}`, { cause: error });
    }
    this.segment = sequence;
    this.recordOffset = recordOffset;
    this.record = record;
  }
}

/** Whether a record with a valid header and CRC starts anywhere in [from, end). */
function hasRecordAfter(buffer: Buffer, from: number, end: number): boolean {
  for (let at = from; at + RECORD_HEADER_BYTES <= end; at++) {
    const type = buffer[at + 8];
    // Cheap filters first: zeros (the common case past a torn write) fail the type test at once.
    if (type < RecordType.Entries || type > RecordType.SnapshotMarker || buffer[at + 9] !== 0 || buffer[at + 10] !== 0 || buffer[at + 11] !== 0) continue;
    if (buffer.readUInt32LE(at + 4) > end - at - RECORD_HEADER_BYTES) continue;
    try {
      readRecordHeader(buffer, at, end);
      return true;
    } catch (error) {
      if (!(error instanceof RecordFormatError)) throw error;
    }
  }
  return false;
}

function isZero(buffer: Buffer, from: number, to: number): boolean {
  for (let at = from; at < to; at++) if (buffer[at] !== 0) return false;
  return true;
}

/** The offset of the last non-zero byte in [from, to), or -1. */
function findLastNonZero(buffer: Buffer, from: number, to: number): number {
  for (let at = to - 1; at >= from; at--) if (buffer[at] !== 0) return at;
  return -1;
}
