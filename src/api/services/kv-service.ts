/**
 * etcd's KV service on a KvBackend, with etcd's server semantics:
 *
 * - Range: serializable reads answer from the local MVCC at once; other reads
 *   first pass the backend's ReadIndex barrier. The header's revision is the
 *   store's current revision when the read opened, also for a read at a past
 *   revision (as etcd). The answer is never built unbounded: its size is
 *   computed from the key index first and an answer above
 *   `rangeResponseBytesMax` is refused with RangeResponseTooLargeError; the
 *   kvs are then read in bounded chunks, yielding to the event loop between
 *   chunks.
 * - Put, DeleteRange, Txn and Compact go through Raft (backend.propose); the
 *   header's revision is the entry's revision as applied here. A physical
 *   Compact answers once the history is physically gone.
 *
 * Every failure reaches the client as etcd's status and text (kv-mapping.ts).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { assert } from "../../lib/assert.js";
import { limits } from "../../lib/limits.js";
import {
  StaleReadError, validateCommand, type AppliedEntry, type KvCommand, type KvResponse, type RangeRequest as KvRangeRequest,
} from "../../kv/mod.js";
import type { KvBackend } from "../backend.js";
import type { CallContext } from "../grpc/server.js";
import { GrpcError, GrpcStatus } from "../grpc/status.js";
import type { KvHandler } from "../handlers.js";
import {
  compactCommand, deleteRangeCommand, expectType, kvErrorToGrpc, putCommand, toKvRangeRequest, toWireDeleteRangeResponse,
  toWireKeyValue, toWirePutResponse, toWireTxnResponse, txnCommand,
} from "../kv-mapping.js";
import type {
  CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest, PutResponse,
  RangeRequest, RangeResponse, TxnRequest, TxnResponse,
} from "../protobuf/messages.js";
import { headerOf, mapped, refuseOnLearner } from "./common.js";

/**
 * Default cap on one Range answer (Cairn's --max-response-bytes). etcd has
 * none and runs out of memory on huge ranges; 64 MiB stays well inside what
 * clients accept once they raise their receive limit. Belongs in lib/limits.ts.
 */
export const RANGE_RESPONSE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/**
 * Protobuf framing of one KeyValue beyond its key and value bytes, at most:
 * the kvs tag and length (6), key tag and length (6), value tag and length
 * (6), and four int64 fields at 11 bytes each (create, mod, version, lease).
 */
export const KEY_VALUE_FRAMING_BYTES_MAX = 62;
/** Kvs read per chunk of a Range, and key plus value bytes after which a chunk stops. */
export const RANGE_CHUNK_KVS_MAX = 1024;
export const RANGE_CHUNK_BYTES_MAX = 1024 * 1024;
/** A range that a snapshot install overtook is read again this many times before the error reaches the client. */
export const STALE_READ_RETRIES_MAX = 2;

/**
 * A Range whose answer would exceed the response cap. etcd's nearest
 * behaviour is gRPC refusing to send a message above its send limit, also
 * RESOURCE_EXHAUSTED; Cairn refuses before reading any value, and says why
 * and what to do.
 */
export class RangeResponseTooLargeError extends GrpcError {
  override name = "RangeResponseTooLargeError";
  constructor(readonly responseBytes: number, readonly responseBytesMax: number) {
    super(
      GrpcStatus.resourceExhausted,
      `cairn: range response too large (up to ${responseBytes} bytes, limit ${responseBytesMax}); ` +
        "narrow the range, set a limit, or ask for keys_only or count_only",
    );
  }
}

export interface KvServiceOptions {
  /** Largest Range answer, key and value bytes plus framing (default RANGE_RESPONSE_BYTES_MAX_DEFAULT). */
  rangeResponseBytesMax?: number;
  /** etcd's --max-txn-ops, checked again before proposing (default limits.txnOpsMax). */
  txnOpsMax?: number;
}

export class KvService implements KvHandler {
  private readonly rangeResponseBytesMax: number;
  private readonly txnOpsMax: number;

  constructor(private readonly backend: KvBackend, options: KvServiceOptions = {}) {
    this.rangeResponseBytesMax = options.rangeResponseBytesMax ?? RANGE_RESPONSE_BYTES_MAX_DEFAULT;
    this.txnOpsMax = options.txnOpsMax ?? limits.txnOpsMax;
    assert(this.rangeResponseBytesMax > 0, "rangeResponseBytesMax must be positive");
    assert(Number.isInteger(this.txnOpsMax) && this.txnOpsMax > 0, "txnOpsMax must be a positive integer");
  }

  range(request: RangeRequest, context: CallContext): Promise<RangeResponse> {
    return mapped(context.signal, async () => {
      if (!request.serializable) {
        refuseOnLearner(this.backend);
        await this.backend.readBarrier(context.signal);
      }
      const kvRequest = toKvRangeRequest(request);
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.readRange(kvRequest, context.signal);
        } catch (error) {
          if (!(error instanceof StaleReadError) || attempt >= STALE_READ_RETRIES_MAX) throw error;
        }
      }
    });
  }

  private async readRange(request: KvRangeRequest, signal: AbortSignal): Promise<RangeResponse> {
    const stream = this.backend.mvcc.openRange(request);
    try {
      const summary = stream.summary();
      const responseBytes = summary.bytes + summary.kvCount * KEY_VALUE_FRAMING_BYTES_MAX;
      if (responseBytes > this.rangeResponseBytesMax) throw new RangeResponseTooLargeError(responseBytes, this.rangeResponseBytesMax);
      const kvs: KeyValue[] = [];
      // Every chunk but the final null carries at least one kv, so this many reads always suffice.
      const chunkReadsMax = summary.kvCount + 1;
      for (let reads = 1; ; reads++) {
        assert(reads <= chunkReadsMax, () => `range needed more than ${chunkReadsMax} chunk reads for ${summary.kvCount} kvs`);
        const chunk = stream.next(RANGE_CHUNK_KVS_MAX, RANGE_CHUNK_BYTES_MAX);
        if (chunk === null) break;
        for (const kv of chunk) kvs.push(toWireKeyValue(kv));
        if (kvs.length >= summary.kvCount) continue;
        // Let ticks and other calls run between chunks of a large answer.
        await nextTurn();
        signal.throwIfAborted();
      }
      assert(kvs.length === summary.kvCount, () => `range produced ${kvs.length} kvs, its summary said ${summary.kvCount}`);
      return { header: headerOf(this.backend, stream.revision), kvs, more: summary.more, count: summary.count };
    } finally {
      stream.close();
    }
  }

  put(request: PutRequest, context: CallContext): Promise<PutResponse> {
    return mapped(context.signal, async () => {
      const applied = await this.propose(putCommand(request), context.signal);
      return toWirePutResponse(expectType(outcomeOf(applied), "put").response, headerOf(this.backend, applied.revision));
    });
  }

  deleteRange(request: DeleteRangeRequest, context: CallContext): Promise<DeleteRangeResponse> {
    return mapped(context.signal, async () => {
      const applied = await this.propose(deleteRangeCommand(request), context.signal);
      return toWireDeleteRangeResponse(expectType(outcomeOf(applied), "deleteRange").response, headerOf(this.backend, applied.revision));
    });
  }

  /** Every Txn goes through Raft, read-only ones included: one path, linearizable, and the same on every member. */
  txn(request: TxnRequest, context: CallContext): Promise<TxnResponse> {
    return mapped(context.signal, async () => {
      const applied = await this.propose(txnCommand(request), context.signal);
      return toWireTxnResponse(expectType(outcomeOf(applied), "txn").response, headerOf(this.backend, applied.revision));
    });
  }

  compact(request: CompactionRequest, context: CallContext): Promise<CompactionResponse> {
    return mapped(context.signal, async () => {
      const applied = await this.propose(compactCommand(request), context.signal);
      const compacted = expectType(outcomeOf(applied), "compact").response;
      if (compacted.physical) await this.backend.physicallyCompacted(compacted.compactRevision, context.signal);
      // etcd stamps a Compact answer with the store's revision when it answers.
      return { header: headerOf(this.backend, this.backend.mvcc.currentRevision()) };
    });
  }

  /** Validates as the state machine will (so a bad command never enters the log), then proposes. */
  private propose(command: KvCommand, signal: AbortSignal): Promise<AppliedEntry> {
    refuseOnLearner(this.backend);
    validateCommand(command, { txnOpsMax: this.txnOpsMax });
    return this.backend.propose(command, signal);
  }
}

/** The command's answer, or its MVCC error as the client should see it. */
function outcomeOf(applied: AppliedEntry): KvResponse {
  assert(applied.outcome !== null, () => `the runtime answered a KV proposal with entry ${applied.index}, which is not a KV command`);
  if (!applied.outcome.ok) throw kvErrorToGrpc(applied.outcome.error);
  return applied.outcome.response;
}
