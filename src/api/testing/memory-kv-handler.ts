/**
 * A small in-memory KvHandler for the API's tests and benchmarks: enough MVCC
 * (revisions, versions, compaction bounds, Txn compares) to drive real etcd
 * clients through the server, not a model of src/kv. It keeps only the latest
 * version of each key; reads at an old revision check the bounds and then
 * answer from the latest state.
 */
import type { KvHandler } from "../handlers.js";
import { EtcdError } from "../etcd-errors.js";
import type {
  Compare, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest,
  PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
} from "../protobuf/messages.js";
import { CompareResult, CompareTarget, SortOrder, SortTarget } from "../protobuf/messages.js";

export const TEST_CLUSTER_ID = 0xdead_beef_cafe_f00dn;
export const TEST_MEMBER_ID = 0xfedc_ba98_7654_3210n;
export const TEST_RAFT_TERM = 7;

function inRange(key: Buffer, start: Uint8Array, end: Uint8Array): boolean {
  if (end.length === 0) return key.equals(start);
  if (Buffer.compare(key, start) < 0) return false;
  if (end.length === 1 && end[0] === 0) return true;
  return Buffer.compare(key, end) < 0;
}

export class MemoryKvHandler implements KvHandler {
  private readonly keys = new Map<string, KeyValue>();
  revision = 1;
  compactedRevision = 0;

  header(): ResponseHeader {
    return { clusterId: TEST_CLUSTER_ID, memberId: TEST_MEMBER_ID, revision: this.revision, raftTerm: TEST_RAFT_TERM };
  }

  private checkRevision(revision: number): void {
    if (revision <= 0) return;
    if (revision < this.compactedRevision) throw new EtcdError("compacted");
    if (revision > this.revision) throw new EtcdError("futureRevision");
  }

  private matching(key: Uint8Array, rangeEnd: Uint8Array): KeyValue[] {
    const start = Buffer.from(key);
    return [...this.keys.values()].filter((kv) => inRange(Buffer.from(kv.key), start, rangeEnd)).sort((a, b) => Buffer.compare(a.key, b.key));
  }

  async range(request: RangeRequest): Promise<RangeResponse> {
    return this.rangeNow(request);
  }

  private rangeNow(request: RangeRequest): RangeResponse {
    this.checkRevision(request.revision);
    let kvs = this.matching(request.key, request.rangeEnd);
    if (request.sortOrder !== SortOrder.none) {
      const field = (kv: KeyValue): number | Buffer =>
        request.sortTarget === SortTarget.version ? kv.version
          : request.sortTarget === SortTarget.create ? kv.createRevision
            : request.sortTarget === SortTarget.mod ? kv.modRevision
              : request.sortTarget === SortTarget.value ? Buffer.from(kv.value) : Buffer.from(kv.key);
      kvs.sort((a, b) => {
        const left = field(a);
        const right = field(b);
        const order = typeof left === "number" ? left - (right as number) : Buffer.compare(left, right as Buffer);
        return request.sortOrder === SortOrder.descend ? -order : order;
      });
    }
    const count = kvs.length;
    const more = request.limit > 0 && count > request.limit;
    if (request.limit > 0) kvs = kvs.slice(0, request.limit);
    if (request.countOnly) kvs = [];
    if (request.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
    return { header: this.header(), kvs, more, count };
  }

  async put(request: PutRequest): Promise<PutResponse> {
    this.revision++;
    return this.putNow(request, this.revision);
  }

  private putNow(request: PutRequest, revision: number): PutResponse {
    const id = Buffer.from(request.key).toString("latin1");
    const previous = this.keys.get(id);
    if ((request.ignoreValue || request.ignoreLease) && !previous) throw new EtcdError("keyNotFound");
    this.keys.set(id, {
      key: request.key,
      value: request.ignoreValue && previous ? previous.value : request.value,
      lease: request.ignoreLease && previous ? previous.lease : request.lease,
      createRevision: previous ? previous.createRevision : revision,
      modRevision: revision,
      version: previous ? previous.version + 1 : 1,
    });
    return { header: this.header(), prevKv: request.prevKv ? previous : undefined };
  }

  async deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const doomed = this.matching(request.key, request.rangeEnd);
    if (doomed.length > 0) this.revision++;
    return this.deleteNow(request, doomed);
  }

  private deleteNow(request: DeleteRangeRequest, doomed = this.matching(request.key, request.rangeEnd)): DeleteRangeResponse {
    for (const kv of doomed) this.keys.delete(Buffer.from(kv.key).toString("latin1"));
    return { header: this.header(), deleted: doomed.length, prevKvs: request.prevKv ? doomed : [] };
  }

  async txn(request: TxnRequest): Promise<TxnResponse> {
    const writes = (ops: RequestOp[]): boolean => ops.some((op) => !("requestRange" in op));
    const succeeded = request.compare.every((compare) => this.holds(compare));
    const branch = succeeded ? request.success : request.failure;
    if (writes(branch)) this.revision++;
    return this.txnNow(request, this.revision);
  }

  private txnNow(request: TxnRequest, revision: number): TxnResponse {
    const succeeded = request.compare.every((compare) => this.holds(compare));
    const responses: ResponseOp[] = (succeeded ? request.success : request.failure).map((op): ResponseOp => {
      if ("requestRange" in op) return { responseRange: this.rangeNow(op.requestRange) };
      if ("requestPut" in op) return { responsePut: this.putNow(op.requestPut, revision) };
      if ("requestDeleteRange" in op) return { responseDeleteRange: this.deleteNow(op.requestDeleteRange) };
      return { responseTxn: this.txnNow(op.requestTxn, revision) };
    });
    return { header: this.header(), succeeded, responses };
  }

  private holds(compare: Compare): boolean {
    const kvs = compare.rangeEnd.length > 0 ? this.matching(compare.key, compare.rangeEnd) : [this.keys.get(Buffer.from(compare.key).toString("latin1"))];
    return kvs.every((kv) => {
      let order: number;
      switch (compare.target) {
        case CompareTarget.value:
          order = Buffer.compare(Buffer.from(kv?.value ?? []), Buffer.from(compare.value ?? []));
          break;
        case CompareTarget.version: order = (kv?.version ?? 0) - (compare.version ?? 0); break;
        case CompareTarget.create: order = (kv?.createRevision ?? 0) - (compare.createRevision ?? 0); break;
        case CompareTarget.mod: order = (kv?.modRevision ?? 0) - (compare.modRevision ?? 0); break;
        default: order = Number((kv?.lease ?? 0n) - (compare.lease ?? 0n));
      }
      switch (compare.result) {
        case CompareResult.equal: return order === 0;
        case CompareResult.greater: return order > 0;
        case CompareResult.less: return order < 0;
        default: return order !== 0;
      }
    });
  }

  async compact(request: CompactionRequest): Promise<CompactionResponse> {
    if (request.revision <= this.compactedRevision) throw new EtcdError("compacted");
    if (request.revision > this.revision) throw new EtcdError("futureRevision");
    this.compactedRevision = request.revision;
    return { header: this.header() };
  }
}
