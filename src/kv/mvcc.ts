/**
 * The etcd-compatible MVCC state machine on a KvStore.
 *
 * Revisions: every write command that changes something takes the next main
 * revision; each key it writes takes the next sub revision within it (a Txn
 * is one main revision however many keys it writes). Per key, a generation
 * runs from a put that creates it (create revision = that revision, version
 * 1) through puts (version + 1) to a delete (a tombstone); the next put
 * starts a new generation. History stays readable by revision until a
 * compaction; reading below the compact revision is refused.
 *
 * Deterministic: the same entries applied to the same state give the same
 * state, results and events on every replica and every store.
 */
import { assert } from "../lib/assert.js";
import { crc32c } from "../lib/crc32c.js";
import { limits } from "../lib/limits.js";
import type { Entry } from "../raft/types.js";
import {
  decodeCommand, deleteRangeRequest, CompareResult, CompareTarget, type Compare, type DeleteRangeRequest, type KvCommand,
  type LeaseCheckpointRequest, type PutRequest, type RangeRequest, type RequestOp, type TxnRequest,
} from "./command.js";
import {
  compareBytes, decodeIndexValue, decodeKeyIndexKey, bytesEqual, encodeIndexValue, encodeRevisionRecord, escapeKey,
  keyIndexKey, revisionKey,
} from "./encoding.js";
import {
  CommandDecodeError, CompactedError, FutureRevisionError, KeyNotFoundError, KvError, LeaseExistsError, LeaseNotFoundError,
  StaleReadError, TxnResponseTooLargeError,
} from "./errors.js";
import { hitKey } from "./index-scan.js";
import { LeaseTable, type LeaseInfo } from "./lease.js";
import { indexBounds, newestAt, readValue, scanLive, toKeyValue, type IndexHit } from "./index-scan.js";
import { KeyOrderedChunker, keyOrdered, rangeAll, selectSorted, summarize, type RangeSummary } from "./range.js";
import {
  checkFormatVersion, decodeMetaNumber, encodeMetaNumber, KvTable, MetaKey, type KvReader, type KvStore, type KvWriter,
} from "./store.js";
import type {
  AppliedEntry, ApplyOutcome, DeleteRangeResponse, HashKvResult, KeyValue, KvEvent, KvResponse, LeaseCheckpointResponse,
  LeaseRevokeResponse, PutResponse, RangeResponse, ResponseOp, TxnResponse,
} from "./types.js";
import { checkKey, validateCommand } from "./validate.js";

export interface MvccOptions {
  /** etcd's --max-txn-ops, checked again at apply. */
  readonly txnOpsMax?: number;
  /** Bytes the ranges of one Txn may answer (default limits.txnRangeResponseBytesMax; must be equal on every member). */
  readonly txnRangeResponseBytesMax?: number;
}

interface ApplyState {
  currentRevision: number;
  compactRevision: number;
}

/** Everything one write command does inside the batch's write transaction. */
class WriteContext {
  sub = 0;
  readonly events: KvEvent[] = [];
  constructor(readonly writer: KvWriter, readonly baseRevision: number) {}
  get main(): number {
    return this.baseRevision + 1;
  }
  get changed(): boolean {
    return this.sub > 0;
  }
  /** The revision reads inside this command see: its own writes count. */
  get readRevision(): number {
    return this.changed ? this.baseRevision + 1 : this.baseRevision;
  }
}

const EMPTY = new Uint8Array(0);
/** Protobuf framing of one KeyValue in an answer beyond its key and value, at most (as the API's range cap counts it). */
const TXN_KEY_VALUE_FRAMING_BYTES = 62;

export class Mvcc {
  private state: ApplyState;
  private applied: number;
  private appliedTermValue: number;
  private readonly pins = new Map<number, number>();
  private nextPinId = 1;
  private compactionPauses = 0;
  private generationValue = 0;
  private leaseTable = new LeaseTable();

  constructor(readonly store: KvStore, private readonly options: MvccOptions = {}) {
    checkFormatVersion(store);
    const loaded = store.read((reader) => ({
      applied: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.appliedIndex)),
      term: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.appliedTerm)),
      // etcd starts an empty store at revision 1: the first write is revision 2.
      currentRevision: Math.max(1, decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.currentRevision))),
      compactRevision: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.compactRevision)),
    }));
    this.applied = loaded.applied;
    this.appliedTermValue = loaded.term;
    this.state = { currentRevision: loaded.currentRevision, compactRevision: loaded.compactRevision };
    assert(this.state.compactRevision <= this.state.currentRevision, "compact revision above current revision in meta");
    this.loadLeases();
  }

  private loadLeases(): void {
    const revision = this.state.currentRevision;
    this.store.read((reader) => this.leaseTable.load(reader, function* () {
      for (const hit of scanLive(reader, { start: new Uint8Array([0]) }, revision, false)) {
        if (hit.index.lease !== 0n) yield { key: hitKey(hit), lease: hit.index.lease };
      }
    }));
  }

  /** A lease as the applied state has it (granted TTL, last checkpoint, attached keys), or null. */
  lease(id: bigint): LeaseInfo | null {
    return this.leaseTable.info(id);
  }

  /** Every lease's id. */
  leaseIds(): bigint[] {
    return this.leaseTable.ids();
  }

  appliedIndex(): number {
    return this.applied;
  }
  appliedTerm(): number {
    return this.appliedTermValue;
  }
  currentRevision(): number {
    return this.state.currentRevision;
  }
  compactRevision(): number {
    return this.state.compactRevision;
  }
  /** Changes each time reload() swaps in a new state; streamed reads of an older one fail. */
  generation(): number {
    return this.generationValue;
  }

  /**
   * Applies committed entries in ONE store write transaction that also
   * records the last applied index and term, so after a crash the store is
   * either before or after the whole batch. Entries at or below the applied
   * index were applied before (a replay after restart) and are skipped.
   */
  applyEntries(entries: readonly Entry[]): AppliedEntry[] {
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i].index === entries[i - 1].index + 1, () => `entries out of order: ${entries[i - 1].index} then ${entries[i].index}`);
    }
    const fresh = entries.filter((entry) => entry.index > this.applied);
    if (fresh.length === 0) return [];
    assert(fresh[0].index === this.applied + 1, () => `gap in applied entries: applied ${this.applied}, next ${fresh[0].index}`);
    const state: ApplyState = { ...this.state };
    let results: AppliedEntry[];
    try {
      results = this.store.write((writer) => {
        const out: AppliedEntry[] = [];
        for (const entry of fresh) out.push(this.applyEntry(writer, state, entry));
        const last = fresh[fresh.length - 1];
        writer.put(KvTable.Meta, MetaKey.appliedIndex, encodeMetaNumber(last.index));
        writer.put(KvTable.Meta, MetaKey.appliedTerm, encodeMetaNumber(last.term));
        writer.put(KvTable.Meta, MetaKey.currentRevision, encodeMetaNumber(state.currentRevision));
        writer.put(KvTable.Meta, MetaKey.compactRevision, encodeMetaNumber(state.compactRevision));
        return out;
      });
    } catch (error) {
      // The lease cache was changed along with the transaction that did not commit: read it back as the store has it.
      this.loadLeases();
      throw error;
    }
    // Only after the commit: a failed write leaves the cached state as the store has it.
    this.state = state;
    const last = fresh[fresh.length - 1];
    this.applied = last.index;
    this.appliedTermValue = last.term;
    return results;
  }

  private applyEntry(writer: KvWriter, state: ApplyState, entry: Entry): AppliedEntry {
    // Membership changes and empty no-ops only advance the applied index here; the runtime handles them.
    if (entry.type !== 0 || entry.data.length === 0) {
      return { index: entry.index, term: entry.term, outcome: null, revision: state.currentRevision, events: [] };
    }
    let command: KvCommand;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      if (!(error instanceof CommandDecodeError)) throw error;
      return { index: entry.index, term: entry.term, outcome: { ok: false, error }, revision: state.currentRevision, events: [] };
    }
    const { outcome, events } = this.applyCommand(writer, state, command, entry.index);
    return { index: entry.index, term: entry.term, outcome, revision: state.currentRevision, events };
  }

  /** Applies one command; on success state.currentRevision moves past its writes. Errors change nothing. */
  private applyCommand(writer: KvWriter, state: ApplyState, command: KvCommand, index: number): { outcome: ApplyOutcome; events: KvEvent[] } {
    const context = new WriteContext(writer, state.currentRevision);
    let response: KvResponse;
    try {
      validateCommand(command, { txnOpsMax: this.options.txnOpsMax });
      switch (command.type) {
        case "put":
          this.checkPut(writer, command.request, state);
          response = { type: "put", response: this.put(context, command.request) };
          break;
        case "deleteRange":
          response = { type: "deleteRange", response: this.deleteRange(context, command.request) };
          break;
        case "txn": {
          const path = this.txnPath(writer, command.request, state.currentRevision);
          this.checkTxnPath(writer, command.request, path.slice(), state, { bytes: 0 });
          response = { type: "txn", response: this.txn(context, command.request, path, state.compactRevision) };
          break;
        }
        case "compact": {
          const revision = command.request.revision;
          if (revision <= state.compactRevision) throw new CompactedError();
          if (revision > state.currentRevision) throw new FutureRevisionError();
          state.compactRevision = revision;
          response = { type: "compact", response: { revision: state.currentRevision, compactRevision: revision, physical: command.request.physical } };
          break;
        }
        case "leaseGrant": {
          const { id, ttlSeconds } = command.request;
          if (this.leaseTable.has(id)) throw new LeaseExistsError(id);
          this.leaseTable.put(writer, { id, ttlSeconds, remainingSeconds: 0, renewedIndex: index });
          response = { type: "leaseGrant", response: { revision: state.currentRevision, id, ttlSeconds } };
          break;
        }
        case "leaseRenew": {
          const record = this.leaseTable.get(command.request.id);
          if (record === undefined) throw new LeaseNotFoundError(command.request.id);
          this.leaseTable.put(writer, { ...record, remainingSeconds: 0, renewedIndex: index });
          response = { type: "leaseRenew", response: { revision: state.currentRevision, id: record.id, ttlSeconds: record.ttlSeconds } };
          break;
        }
        case "leaseRevoke": {
          const { id, expiryIndex } = command.request;
          const record = this.leaseTable.get(id);
          if (record === undefined) throw new LeaseNotFoundError(id);
          response = expiryIndex > 0 && record.renewedIndex > expiryIndex
            ? { type: "leaseRevoke", response: { revision: state.currentRevision, id, deleted: 0, revoked: false } }
            : { type: "leaseRevoke", response: this.revokeLease(context, id) };
          break;
        }
        case "leaseCheckpoint":
          response = { type: "leaseCheckpoint", response: this.checkpointLeases(writer, command.request, state.currentRevision) };
          break;
      }
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      // Checks run before any write, so an error here has written nothing.
      assert(!context.changed, "a kv command failed after writing");
      return { outcome: { ok: false, error }, events: [] };
    }
    if (context.changed) state.currentRevision = context.main;
    return { outcome: { ok: true, response }, events: context.events };
  }

  private checkLease(lease: bigint): void {
    if (lease !== 0n && !this.leaseTable.has(lease)) throw new LeaseNotFoundError(lease);
  }

  /** Deletes the lease's keys (in byte order, as etcd) and the lease, all in this command's one revision. */
  private revokeLease(context: WriteContext, id: bigint): LeaseRevokeResponse {
    let deleted = 0;
    for (const key of this.leaseTable.attachedKeys(id)) deleted += this.deleteRange(context, deleteRangeRequest(key)).deleted;
    this.leaseTable.delete(context.writer, id);
    return { revision: context.readRevision, id, deleted, revoked: true };
  }

  private checkpointLeases(writer: KvWriter, request: LeaseCheckpointRequest, revision: number): LeaseCheckpointResponse {
    let recorded = 0;
    for (const checkpoint of request.checkpoints) {
      const record = this.leaseTable.get(checkpoint.id);
      // A lease renewed after the leader measured it starts from its full TTL again: the measurement is stale.
      if (record === undefined || record.renewedIndex > request.asOfIndex) continue;
      this.leaseTable.put(writer, { ...record, remainingSeconds: Math.min(checkpoint.remainingSeconds, record.ttlSeconds) });
      recorded++;
    }
    return { revision, recorded };
  }

  /** Checks that a put can run, against the state before the command (a txn never writes one key twice). */
  private checkPut(reader: KvReader, request: PutRequest, state: ApplyState): void {
    let lease = request.lease;
    if (request.ignoreValue || request.ignoreLease) {
      const current = newestAt(reader, escapeKey(request.key), state.currentRevision);
      if (current === null || current.index.tombstone) throw new KeyNotFoundError();
      if (request.ignoreLease) lease = current.index.lease;
    }
    this.checkLease(lease);
  }

  private checkRangeRevision(revision: number, state: ApplyState): void {
    if (revision > state.currentRevision) throw new FutureRevisionError();
    if (revision > 0 && revision < state.compactRevision) throw new CompactedError();
  }

  private put(context: WriteContext, request: PutRequest): PutResponse {
    const escaped = escapeKey(request.key);
    const previous = newestAt(context.writer, escaped, context.readRevision);
    const live = previous !== null && !previous.index.tombstone ? previous : null;
    const prevKv = live === null ? null : toKeyValue(context.writer, live, true);
    const value = request.ignoreValue ? (prevKv as KeyValue).value : request.value;
    const lease = request.ignoreLease ? (prevKv as KeyValue).lease : request.lease;
    const main = context.main;
    const sub = context.sub++;
    const createRevision = live === null ? main : live.index.createRevision;
    const version = live === null ? 1 : live.index.version + 1;
    context.writer.put(KvTable.Revisions, revisionKey(main, sub), encodeRevisionRecord({ tombstone: false, key: request.key, value, createRevision, version, lease }));
    context.writer.put(KvTable.KeyIndex, keyIndexKey(escaped, main, sub), encodeIndexValue({ tombstone: false, createRevision, version, lease, valueLength: value.length }));
    const kv: KeyValue = { key: request.key, value, createRevision, modRevision: main, version, lease };
    this.leaseTable.move(request.key, live === null ? 0n : live.index.lease, lease);
    context.events.push({ type: "put", kv, prevKv });
    return { revision: main, prevKv: request.prevKv ? prevKv : null };
  }

  private deleteRange(context: WriteContext, request: DeleteRangeRequest): DeleteRangeResponse {
    const bounds = indexBounds(request.key, request.rangeEnd);
    // Collect first: writing into the key index while walking it is not something every store allows.
    const hits: IndexHit[] = bounds === null ? [] : [...scanLive(context.writer, bounds, context.readRevision, false)];
    const prevKvs: KeyValue[] = [];
    for (const hit of hits) {
      const prevKv = toKeyValue(context.writer, hit, true);
      const main = context.main;
      const sub = context.sub++;
      context.writer.put(KvTable.Revisions, revisionKey(main, sub), encodeRevisionRecord({ tombstone: true, key: prevKv.key, value: EMPTY, createRevision: 0, version: 0, lease: 0n }));
      const escaped = hit.prefix.subarray(0, hit.prefix.length - 2);
      context.writer.put(KvTable.KeyIndex, keyIndexKey(escaped, main, sub), encodeIndexValue({ tombstone: true, createRevision: 0, version: 0, lease: 0n, valueLength: 0 }));
      this.leaseTable.move(prevKv.key, hit.index.lease, 0n);
      context.events.push({ type: "delete", kv: { key: prevKv.key, value: EMPTY, createRevision: 0, modRevision: main, version: 0, lease: 0n }, prevKv });
      prevKvs.push(prevKv);
    }
    return { revision: context.readRevision, deleted: hits.length, prevKvs: request.prevKv ? prevKvs : [] };
  }

  /** etcd 3.5 evaluates the compares of a txn and of every nested txn on its path up front, on the state before the txn. */
  private txnPath(reader: KvReader, request: TxnRequest, revision: number): boolean[] {
    const succeeded = request.compare.every((item) => this.evaluateCompare(reader, item, revision));
    const path = [succeeded];
    for (const op of succeeded ? request.success : request.failure) {
      if (op.type === "txn") path.push(...this.txnPath(reader, op.request, revision));
    }
    return path;
  }

  /**
   * Checks every op on the txn's path before anything is written, so a
   * refused txn changes nothing: revisions, puts, and the size of the range
   * answers (measured on the key index, before any value is read; the txn's
   * own writes can add at most its request size on top).
   */
  private checkTxnPath(reader: KvReader, request: TxnRequest, path: boolean[], state: ApplyState, answer: { bytes: number }): void {
    const succeeded = path.shift();
    assert(succeeded !== undefined, "txn path too short");
    for (const op of succeeded ? request.success : request.failure) {
      switch (op.type) {
        case "range": {
          this.checkRangeRevision(op.request.revision, state);
          const summary = summarize(reader, op.request, op.request.revision > 0 ? op.request.revision : state.currentRevision);
          answer.bytes += summary.bytes + summary.kvCount * TXN_KEY_VALUE_FRAMING_BYTES;
          const bytesMax = this.options.txnRangeResponseBytesMax ?? limits.txnRangeResponseBytesMax;
          if (answer.bytes > bytesMax) throw new TxnResponseTooLargeError(answer.bytes, bytesMax);
          break;
        }
        case "put": this.checkPut(reader, op.request, state); break;
        case "deleteRange": break;
        case "txn": this.checkTxnPath(reader, op.request, path, state, answer); break;
      }
    }
  }

  private evaluateCompare(reader: KvReader, item: Compare, revision: number): boolean {
    const bounds = indexBounds(item.key, item.rangeEnd);
    let seen = false;
    if (bounds !== null) {
      for (const hit of scanLive(reader, bounds, revision, false)) {
        seen = true;
        if (!compareOne(item, hit, () => readValue(reader, hit))) return false;
      }
    }
    if (seen) return true;
    // etcd: a value compare on missing keys always fails; other targets compare against zero.
    if (item.target === CompareTarget.Value) return false;
    return compareOne(item, null, () => EMPTY);
  }

  private txn(context: WriteContext, request: TxnRequest, path: boolean[], compactRevision: number): TxnResponse {
    const succeeded = path.shift() as boolean;
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? request.success : request.failure) responses.push(this.txnOp(context, op, path, compactRevision));
    return { revision: context.readRevision, succeeded, responses: responses.map((response) => withRevision(response, context)) };
  }

  private txnOp(context: WriteContext, op: RequestOp, path: boolean[], compactRevision: number): ResponseOp {
    switch (op.type) {
      case "range": {
        const readRevision = op.request.revision > 0 ? op.request.revision : context.readRevision;
        assert(readRevision >= compactRevision, "txn range below the compact revision passed its check");
        return { type: "range", response: rangeAll(context.writer, op.request, readRevision, context.readRevision) };
      }
      case "put": return { type: "put", response: this.put(context, op.request) };
      case "deleteRange": return { type: "deleteRange", response: this.deleteRange(context, op.request) };
      case "txn": return { type: "txn", response: this.txn(context, op.request, path, compactRevision) };
    }
  }

  /** The revision a read at `requested` (0: current) sees, or the etcd error for it. */
  private readRevision(requested: number): number {
    const current = this.state.currentRevision;
    if (requested > current) throw new FutureRevisionError();
    const revision = requested <= 0 ? current : requested;
    if (revision < this.state.compactRevision) throw new CompactedError();
    return revision;
  }

  /** The whole answer in one read. For large ranges use openRange. */
  range(request: RangeRequest): RangeResponse {
    checkKey(request.key);
    const revision = this.readRevision(request.revision);
    return this.store.read((reader) => rangeAll(reader, request, revision, this.state.currentRevision));
  }

  /**
   * A range answered in chunks, each read in its own short read, all at one
   * revision that is pinned against compaction until close(). summary()
   * gives count, more and the size before any value is read, so the server
   * can refuse an answer that is too large or frame a streamed one.
   */
  openRange(request: RangeRequest): RangeStream {
    checkKey(request.key);
    const revision = this.readRevision(request.revision);
    const unpin = this.pin(revision);
    const generation = this.generationValue;
    return new RangeStream(this.store, request, revision, this.state.currentRevision, unpin, () => this.generationValue === generation);
  }

  /**
   * Keeps history at and above `revision` physically present until the
   * returned release is called (compaction may still move the compact
   * revision; readers that pinned keep reading).
   */
  pin(revision: number): () => void {
    const id = this.nextPinId++;
    this.pins.set(id, revision);
    return () => {
      this.pins.delete(id);
    };
  }

  /** Stops physical compaction until the returned resume is called (snapshots copy history as it is). */
  pauseCompaction(): () => void {
    this.compactionPauses++;
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      this.compactionPauses--;
    };
  }

  /**
   * etcd's HashKV: a hash of every revision a compaction at the compact
   * revision keeps, up to `revision` (0: current). Independent of how far
   * physical compaction has got, and of the store implementation.
   */
  hashKv(revision = 0): HashKvResult {
    const current = this.state.currentRevision;
    const compact = this.state.compactRevision;
    if (revision > 0 && revision < compact) throw new CompactedError();
    if (revision > current) throw new FutureRevisionError();
    const hashRevision = revision <= 0 ? current : revision;
    const hash = this.store.read((reader) => {
      let crc = 0;
      let keyPrefix: Uint8Array | null = null;
      let keptBelowCompact = false;
      for (const entry of reader.range(KvTable.KeyIndex)) {
        const parts = decodeKeyIndexKey(entry.key);
        if (keyPrefix === null || !bytesEqual(keyPrefix, parts.prefix)) {
          keyPrefix = parts.prefix.slice();
          keptBelowCompact = false;
        }
        if (parts.main > hashRevision) continue;
        if (parts.main <= compact) {
          // Only the newest entry at or below the compact revision survives compaction, and only if it is not a tombstone.
          if (keptBelowCompact) continue;
          keptBelowCompact = true;
          if (decodeIndexValue(entry.value).tombstone) continue;
        }
        const key = revisionKey(parts.main, parts.sub);
        const record = reader.get(KvTable.Revisions, key);
        assert(record !== undefined, "key index entry without a revision record");
        crc = crc32c(key, crc);
        crc = crc32c(record, crc);
      }
      return crc;
    });
    return { hash, compactRevision: compact, hashRevision, revision: current };
  }

  /** Revision up to which history has been physically removed. */
  physicalCompactRevision(): number {
    return this.store.read((reader) => decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.physicalCompactRevision)));
  }

  /**
   * Physically removes history below the compact revision, examining at
   * most about `entriesMax` key-index entries in one write transaction, so
   * compacting a million revisions never stops the world: the runtime calls
   * this between ticks until it returns true. Reads are unaffected (they
   * refuse revisions below the compact revision already). Returns whether
   * physical compaction has caught up.
   */
  compactBatch(entriesMax: number): boolean {
    assert(entriesMax > 0, "compactBatch needs a positive budget");
    if (this.compactionPauses > 0) return false;
    const floor = Math.min(this.state.compactRevision, ...this.pins.values());
    return this.store.write((writer) => {
      const physical = decodeMetaNumber(writer.get(KvTable.Meta, MetaKey.physicalCompactRevision));
      let target = decodeMetaNumber(writer.get(KvTable.Meta, MetaKey.compactPassTarget));
      if (target === 0) {
        if (floor <= physical) return physical >= this.state.compactRevision;
        target = floor;
        writer.put(KvTable.Meta, MetaKey.compactPassTarget, encodeMetaNumber(target));
        writer.delete(KvTable.Meta, MetaKey.compactPassCursor);
      }
      // A pass whose target passed a newer pin waits for the reader.
      if (target > floor) return false;
      const cursor = writer.get(KvTable.Meta, MetaKey.compactPassCursor);
      const doomed: Uint8Array[] = [];
      let examined = 0;
      let keyPrefix: Uint8Array | null = null;
      let keptOne = false;
      let resumeAt: Uint8Array | null = null;
      for (const entry of writer.range(KvTable.KeyIndex, cursor === undefined ? {} : { start: cursor })) {
        const parts = decodeKeyIndexKey(entry.key);
        if (keyPrefix === null || !bytesEqual(keyPrefix, parts.prefix)) {
          // Stop only between keys: the keep-the-newest rule needs a key's entries together.
          if (examined >= entriesMax) {
            resumeAt = entry.key.slice();
            break;
          }
          keyPrefix = parts.prefix.slice();
          keptOne = false;
        }
        examined++;
        if (parts.main > target) continue;
        if (!keptOne) {
          keptOne = true;
          if (!decodeIndexValue(entry.value).tombstone) continue;
        }
        doomed.push(entry.key.slice());
      }
      for (const key of doomed) {
        const parts = decodeKeyIndexKey(key);
        writer.delete(KvTable.KeyIndex, key);
        writer.delete(KvTable.Revisions, revisionKey(parts.main, parts.sub));
      }
      if (resumeAt !== null) {
        writer.put(KvTable.Meta, MetaKey.compactPassCursor, resumeAt);
        return false;
      }
      writer.put(KvTable.Meta, MetaKey.physicalCompactRevision, encodeMetaNumber(target));
      writer.put(KvTable.Meta, MetaKey.compactPassTarget, encodeMetaNumber(0));
      writer.delete(KvTable.Meta, MetaKey.compactPassCursor);
      return target >= this.state.compactRevision;
    });
  }

  /** Reloads cached state from the store (after a snapshot was installed underneath). */
  reload(): void {
    const fresh = new Mvcc(this.store, this.options);
    this.applied = fresh.applied;
    this.appliedTermValue = fresh.appliedTermValue;
    this.state = fresh.state;
    this.leaseTable = fresh.leaseTable;
    this.generationValue++;
    // Pins and pauses belonged to readers of the old state; those readers now fail with StaleReadError.
    this.pins.clear();
    this.compactionPauses = 0;
  }
}

function compareOne(item: Compare, hit: IndexHit | null, value: () => Uint8Array): boolean {
  let result: number;
  switch (item.target) {
    case CompareTarget.Value: result = compareBytes(value(), item.value); break;
    case CompareTarget.Version: result = (hit?.index.version ?? 0) - item.number; break;
    case CompareTarget.Create: result = (hit?.index.createRevision ?? 0) - item.number; break;
    case CompareTarget.Mod: result = (hit?.main ?? 0) - item.number; break;
    case CompareTarget.Lease: {
      const lease = hit?.index.lease ?? 0n;
      result = lease === item.lease ? 0 : lease > item.lease ? 1 : -1;
      break;
    }
  }
  switch (item.result) {
    case CompareResult.Equal: return result === 0;
    case CompareResult.NotEqual: return result !== 0;
    case CompareResult.Greater: return result > 0;
    case CompareResult.Less: return result < 0;
  }
}

/** etcd stamps the responses inside a txn with the txn's final revision. */
function withRevision(op: ResponseOp, context: WriteContext): ResponseOp {
  const revision = context.readRevision;
  switch (op.type) {
    case "range": return { type: "range", response: { ...op.response, revision } };
    case "put": return { type: "put", response: { ...op.response, revision } };
    case "deleteRange": return { type: "deleteRange", response: { ...op.response, revision } };
    case "txn": return { type: "txn", response: { ...op.response, revision } };
  }
}

export class RangeStream {
  private summaryValue: RangeSummary | null = null;
  private readonly chunker: KeyOrderedChunker | null;
  private sorted: IndexHit[] | null = null;
  private sortedAt = 0;
  private closed = false;

  constructor(
    private readonly store: KvStore,
    readonly request: RangeRequest,
    /** The revision read at. */
    readonly readRevision: number,
    /** The current revision when opened (the response header's revision). */
    readonly revision: number,
    private readonly unpin: () => void,
    private readonly current: () => boolean = () => true,
  ) {
    this.chunker = keyOrdered(request) ? new KeyOrderedChunker(request, readRevision) : null;
  }

  summary(): RangeSummary {
    assert(!this.closed, "range stream used after close");
    if (!this.current()) throw new StaleReadError();
    this.summaryValue ??= this.store.read((reader) => summarize(reader, this.request, this.readRevision));
    return this.summaryValue;
  }

  /** The next kvs (at most kvsMax, stopping once bytesMax is passed), or null when the answer is complete. */
  next(kvsMax: number, bytesMax = Number.POSITIVE_INFINITY): KeyValue[] | null {
    assert(!this.closed, "range stream used after close");
    assert(kvsMax > 0, "kvsMax must be positive");
    if (!this.current()) throw new StaleReadError();
    if (this.chunker !== null) return this.store.read((reader) => (this.chunker as KeyOrderedChunker).nextChunk(reader, kvsMax, bytesMax));
    if (this.request.countOnly) return null;
    return this.store.read((reader) => {
      this.sorted ??= selectSorted(reader, this.request, this.readRevision).hits;
      if (this.sortedAt >= this.sorted.length) return null;
      const chunk: KeyValue[] = [];
      let bytes = 0;
      while (this.sortedAt < this.sorted.length && chunk.length < kvsMax && bytes < bytesMax) {
        const kv = toKeyValue(reader, this.sorted[this.sortedAt++], !this.request.keysOnly);
        bytes += kv.key.length + kv.value.length;
        chunk.push(kv);
      }
      return chunk;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unpin();
  }
}
