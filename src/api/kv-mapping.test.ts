import { describe, it, expect } from "vitest";
import {
  CompactedError, CommandDecodeError, CompareResult as KvCompareResult, CompareTarget as KvCompareTarget, DuplicateKeyError,
  EmptyKeyError, encodeCommand, FutureRevisionError, KeyNotFoundError, KeyTooLongError, LeaseNotFoundError, LeaseProvidedError,
  Mvcc, StaleReadError, TooManyOperationsError, ValueProvidedError, TXN_NESTING_MAX, type KvCommand, type KvError,
} from "../kv/mod.js";
import { nodeId } from "../lib/ids.js";
import { EntryType } from "../raft/types.js";
import { NoLeaderError, NotLeaderError, ProposalRefusedError, RequestTimeoutError, StoppedError } from "../server/errors.js";
import { MemoryKvStore } from "../storage/memory-kv/mod.js";
import { BadLeaderTransfereeError, LearnerNotReadyError, MemberExistsError, MemberNotFoundError, PeerUrlExistsError, TooManyLearnersError } from "./backend.js";
import { EtcdError, type EtcdErrorKind } from "./etcd-errors.js";
import { GrpcError, GrpcStatus } from "./grpc/status.js";
import {
  kvErrorToGrpc, toApiError, toKvCompactRequest, toKvCompare, toKvRangeRequest, toKvTxnRequest, toWirePutResponse,
  toWireTxnResponse, UnrepresentableRequestError,
} from "./kv-mapping.js";
import { CompareResult, CompareTarget, type Compare, type RangeRequest, type TxnRequest } from "./protobuf/messages.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const header = { clusterId: 9n, memberId: 8n, revision: 7, raftTerm: 6 };

function wireRange(fields: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: bytes("a"), rangeEnd: new Uint8Array(0), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...fields,
  };
}

function wireCompare(fields: Partial<Compare>): Compare {
  return { result: CompareResult.equal, target: CompareTarget.version, key: bytes("k"), rangeEnd: new Uint8Array(0), ...fields };
}

function nestedTxn(depth: number): TxnRequest {
  let txn: TxnRequest = { compare: [], success: [], failure: [] };
  for (let level = 1; level < depth; level++) txn = { compare: [], success: [{ requestTxn: txn }], failure: [] };
  return txn;
}

describe("wire requests to kv requests", () => {
  it("copies every range field and drops serializable, which only the server looks at", () => {
    const request = toKvRangeRequest(wireRange({
      key: bytes("a"), rangeEnd: bytes("z"), limit: 3, revision: 4, sortOrder: 2, sortTarget: 4, serializable: true, keysOnly: true,
      countOnly: true, minModRevision: 5, maxModRevision: 6, minCreateRevision: 7, maxCreateRevision: 8,
    }));
    expect(request).toEqual({
      key: bytes("a"), rangeEnd: bytes("z"), limit: 3, revision: 4, sortOrder: 2, sortTarget: 4, keysOnly: true, countOnly: true,
      minModRevision: 5, maxModRevision: 6, minCreateRevision: 7, maxCreateRevision: 8,
    });
  });

  it("reads negative limits and revisions as etcd does: no limit, the current revision", () => {
    const request = toKvRangeRequest(wireRange({ limit: -1, revision: -9, minModRevision: -3, minCreateRevision: -3 }));
    expect([request.limit, request.revision, request.minModRevision, request.minCreateRevision]).toEqual([0, 0, 0, 0]);
  });

  it("refuses a negative max filter, which etcd would answer with no keys and kv cannot express", () => {
    expect(() => toKvRangeRequest(wireRange({ maxModRevision: -1 }))).toThrow(UnrepresentableRequestError);
    expect(() => toKvRangeRequest(wireRange({ maxCreateRevision: -1 }))).toThrow("cairn: max_create_revision must not be negative");
  });

  it("refuses unknown sort options with etcd's error", () => {
    for (const fields of [{ sortOrder: 3 }, { sortTarget: 5 }, { sortOrder: -1 }]) {
      const failure = (() => {
        try {
          return toKvRangeRequest(wireRange(fields));
        } catch (error) {
          return error;
        }
      })();
      expect(failure).toBeInstanceOf(EtcdError);
      expect((failure as EtcdError).kind).toBe("invalidSortOption");
    }
  });

  it("takes each compare's operand from the member that matches its target, zero when unset", () => {
    expect(toKvCompare(wireCompare({ target: CompareTarget.version, version: 3, modRevision: 99 }))).toMatchObject({ target: KvCompareTarget.Version, number: 3 });
    expect(toKvCompare(wireCompare({ target: CompareTarget.create, createRevision: 4, version: 99 }))).toMatchObject({ target: KvCompareTarget.Create, number: 4 });
    expect(toKvCompare(wireCompare({ target: CompareTarget.mod, modRevision: 5 }))).toMatchObject({ target: KvCompareTarget.Mod, number: 5 });
    expect(toKvCompare(wireCompare({ target: CompareTarget.value, value: bytes("v") }))).toMatchObject({ target: KvCompareTarget.Value, value: bytes("v") });
    expect(toKvCompare(wireCompare({ target: CompareTarget.lease, lease: 0x7fff_ffff_ffff_ffffn }))).toMatchObject({ target: KvCompareTarget.Lease, lease: 0x7fff_ffff_ffff_ffffn });
    expect(toKvCompare(wireCompare({ target: CompareTarget.mod, version: 7 }))).toMatchObject({ number: 0 });
    expect(toKvCompare(wireCompare({ target: CompareTarget.value }))).toMatchObject({ value: new Uint8Array(0) });
    expect(toKvCompare(wireCompare({ result: CompareResult.notEqual, rangeEnd: bytes("z") }))).toMatchObject({ result: KvCompareResult.NotEqual, rangeEnd: bytes("z") });
  });

  it("refuses compare results and targets etcd does not define", () => {
    expect(() => toKvCompare(wireCompare({ result: 4 }))).toThrow("cairn: unknown compare result 4");
    expect(() => toKvCompare(wireCompare({ target: 5 }))).toThrow("cairn: unknown compare target 5");
  });

  it("gives negative and huge compare operands the outcome of etcd's int64 comparison", () => {
    // The state machine evaluates the mapped compare on a key at version 2 and on a missing key (version 0).
    const mvcc = new Mvcc(new MemoryKvStore());
    let index = 0;
    const apply = (command: KvCommand) => mvcc.applyEntries([{ term: 1, index: ++index, type: EntryType.Normal, data: encodeCommand(command) }])[0];
    const put = { key: bytes("k"), value: bytes("v"), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
    apply({ type: "put", request: put });
    apply({ type: "put", request: put });
    const results = [CompareResult.equal, CompareResult.greater, CompareResult.less, CompareResult.notEqual];
    const int64Holds = (result: number, field: number, operand: number): boolean =>
      [field === operand, field > operand, field < operand, field !== operand][result];
    for (const [key, version] of [["k", 2], ["missing", 0]] as const) {
      for (const operand of [-(2 ** 62), -1, 0, 1, 2, 3, Number.MAX_SAFE_INTEGER + 2 ** 20]) {
        for (const result of results) {
          const compare = toKvCompare(wireCompare({ key: bytes(key), result, target: CompareTarget.version, version: operand }));
          const applied = apply({ type: "txn", request: { compare: [compare], success: [], failure: [] } });
          const outcome = applied.outcome;
          expect(outcome?.ok && outcome.response.type === "txn" && outcome.response.response.succeeded, `${key}@${version} ${result} ${operand}`)
            .toBe(int64Holds(result, version, operand));
        }
      }
    }
  });

  it("maps nested txns up to the kv codec's depth and refuses deeper ones before they reach the log", () => {
    const deepest = toKvTxnRequest(nestedTxn(TXN_NESTING_MAX));
    expect(() => encodeCommand({ type: "txn", request: deepest })).not.toThrow();
    expect(() => toKvTxnRequest(nestedTxn(TXN_NESTING_MAX + 1))).toThrow(`cairn: txn nested deeper than ${TXN_NESTING_MAX} levels`);
  });

  it("maps every op of both branches in order", () => {
    const txn = toKvTxnRequest({
      compare: [wireCompare({})],
      success: [{ requestRange: wireRange() }, { requestPut: { key: bytes("p"), value: bytes("v"), lease: 5n, prevKv: true, ignoreValue: false, ignoreLease: false } }],
      failure: [{ requestDeleteRange: { key: bytes("d"), rangeEnd: bytes("e"), prevKv: true } }, { requestTxn: nestedTxn(1) }],
    });
    expect(txn.success.map((op) => op.type)).toEqual(["range", "put"]);
    expect(txn.failure.map((op) => op.type)).toEqual(["deleteRange", "txn"]);
    expect(txn.success[1]).toMatchObject({ request: { key: bytes("p"), lease: 5n, prevKv: true } });
    expect(txn.failure[0]).toMatchObject({ request: { key: bytes("d"), rangeEnd: bytes("e"), prevKv: true } });
  });

  it("turns a negative compaction revision into 0, which the state machine refuses as compacted like etcd", () => {
    expect(toKvCompactRequest({ revision: -4, physical: true })).toEqual({ revision: 0, physical: true });
    expect(toKvCompactRequest({ revision: 12, physical: false })).toEqual({ revision: 12, physical: false });
  });
});

describe("kv answers to wire responses", () => {
  it("leaves prev_kv out when the state machine has none", () => {
    expect(toWirePutResponse({ revision: 3, prevKv: null }, header)).toEqual({ header, prevKv: undefined });
  });

  it("nests txn responses with headers that carry only the revision, as etcd", () => {
    const kv = { key: bytes("k"), value: bytes("v"), createRevision: 2, modRevision: 3, version: 2, lease: 1n };
    const response = toWireTxnResponse({
      revision: 4, succeeded: true, responses: [
        { type: "range", response: { revision: 4, kvs: [kv], more: true, count: 9 } },
        { type: "txn", response: { revision: 4, succeeded: false, responses: [{ type: "deleteRange", response: { revision: 4, deleted: 1, prevKvs: [kv] } }] } },
      ],
    }, header);
    expect(response.header).toBe(header);
    const nested = { clusterId: 0n, memberId: 0n, revision: 4, raftTerm: 0 };
    expect(response.responses[0]).toEqual({ responseRange: { header: nested, kvs: [kv], more: true, count: 9 } });
    expect(response.responses[1]).toEqual({
      responseTxn: { header: nested, succeeded: false, responses: [{ responseDeleteRange: { header: nested, deleted: 1, prevKvs: [kv] } }] },
    });
  });
});

describe("errors to etcd's statuses", () => {
  const kindOf = (error: unknown): EtcdErrorKind | undefined => (error instanceof EtcdError ? error.kind : undefined);

  it("maps each MVCC error with an etcd twin to that error", () => {
    const cases: Array<[KvError, EtcdErrorKind]> = [
      [new CompactedError(), "compacted"], [new FutureRevisionError(), "futureRevision"], [new LeaseNotFoundError(5n), "leaseNotFound"],
      [new KeyNotFoundError(), "keyNotFound"], [new TooManyOperationsError(), "tooManyOps"], [new DuplicateKeyError(), "duplicateKey"],
      [new EmptyKeyError(), "emptyKey"], [new ValueProvidedError(), "valueProvided"], [new LeaseProvidedError(), "leaseProvided"],
    ];
    for (const [error, kind] of cases) {
      const mapped = kvErrorToGrpc(error);
      expect(kindOf(mapped), error.name).toBe(kind);
      // The kv layer writes etcd's wire text too: both must agree.
      expect(mapped.message).toBe(error.grpcMessage);
      expect(mapped.cause).toBe(error);
    }
  });

  it("keeps Cairn's own MVCC errors with their code and text", () => {
    const tooLong = kvErrorToGrpc(new KeyTooLongError(3000, 1978));
    expect(tooLong).not.toBeInstanceOf(EtcdError);
    expect([tooLong.code, tooLong.message]).toEqual([GrpcStatus.invalidArgument, "cairn: key is too long (3000 encoded bytes, at most 1978)"]);
    expect(kvErrorToGrpc(new StaleReadError()).code).toBe(GrpcStatus.failedPrecondition);
    expect(kvErrorToGrpc(new CommandDecodeError(3, "bad")).code).toBe(GrpcStatus.invalidArgument);
  });

  it("maps the runtime's errors by name", () => {
    const leader = nodeId(7n);
    const cases: Array<[Error, EtcdErrorKind]> = [
      [new NoLeaderError(), "noLeader"],
      [new NotLeaderError(nodeId(0n), "read"), "noLeader"],
      [new NotLeaderError(leader, "move leader"), "notLeader"],
      [new RequestTimeoutError("slow"), "timeout"],
      [new StoppedError(), "stopped"],
      [new ProposalRefusedError("no-leader", nodeId(0n)), "noLeader"],
      [new ProposalRefusedError("leadership-transfer-in-progress", leader), "leaderChanged"],
      [new ProposalRefusedError("leader-has-not-committed-in-its-term", leader), "leaderChanged"],
      [new ProposalRefusedError("entry-too-large", leader), "requestTooLarge"],
      [new ProposalRefusedError("node-removed", leader), "stopped"],
      [new ProposalRefusedError("too-many-uncommitted-entries", leader), "tooManyRequests"],
      [new ProposalRefusedError("too-many-pending-reads", leader), "tooManyRequests"],
      [new MemberNotFoundError(1n), "memberNotFound"], [new MemberExistsError(1n), "memberExists"],
      [new PeerUrlExistsError("http://a:1"), "peerUrlExists"], [new LearnerNotReadyError(1n), "learnerNotReady"],
      [new TooManyLearnersError(1), "tooManyLearners"], [new BadLeaderTransfereeError(1n), "badLeaderTransferee"],
    ];
    for (const [error, kind] of cases) expect(kindOf(toApiError(error)), `${error.name}: ${error.message}`).toBe(kind);
  });

  it("answers raft's membership refusals with FAILED_PRECONDITION and unknown refusals with UNKNOWN", () => {
    const pending = toApiError(new ProposalRefusedError("conf-change-pending", nodeId(1n))) as GrpcError;
    expect([pending.code, pending.message]).toEqual([GrpcStatus.failedPrecondition, "cairn: another membership change is still being applied; retry once it is done"]);
    const strange = toApiError(new ProposalRefusedError("cosmic-rays", nodeId(1n))) as GrpcError;
    expect([strange.code, strange.message]).toEqual([GrpcStatus.unknown, "proposal refused: cosmic-rays"]);
  });

  it("passes gRPC errors through and leaves unknown errors for the server to answer UNKNOWN and log", () => {
    const etcd = new EtcdError("compacted");
    expect(toApiError(etcd)).toBe(etcd);
    const unknown = new TypeError("boom");
    expect(toApiError(unknown)).toBe(unknown);
    expect(toApiError("a string")).toBe("a string");
  });

  it("reports the call's own abort reason once its signal aborted", () => {
    const controller = new AbortController();
    const deadline = new GrpcError(GrpcStatus.deadlineExceeded, "context deadline exceeded");
    controller.abort(deadline);
    expect(toApiError(new RequestTimeoutError("gave up"), controller.signal)).toBe(deadline);
  });
});
