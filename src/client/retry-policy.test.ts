import { describe, it, expect } from "vitest";
import { GrpcStatus, type GrpcStatusCode } from "../api/mod.js";
import { CallAbortedError, EtcdClientError, IndeterminateError, TransportError } from "./errors.js";
import { judgeFailure, type CallKind } from "./retry-policy.js";

const status = (code: GrpcStatusCode, details: string): EtcdClientError => new EtcdClientError(code, details, "h:1", "KV/Put");
const unsent = new TransportError("h:1", false, "connection refused");
const sent = new TransportError("h:1", true, "connection lost");

type Expected = "retry" | "indeterminate" | "fail";

function outcome(error: unknown, kind: CallKind): Expected {
  const verdict = judgeFailure(error, kind, "KV/Put");
  if (verdict.action === "retry") return "retry";
  return verdict.error instanceof IndeterminateError ? "indeterminate" : "fail";
}

describe("the retry policy", () => {
  const table: Array<[string, unknown, Expected, Expected]> = [
    // [what, failure, for a read, for a write]
    ["connection refused before sending", unsent, "retry", "retry"],
    ["connection lost after sending", sent, "retry", "indeterminate"],
    ["deadline after sending", new CallAbortedError("h:1", true, undefined, true), "fail", "indeterminate"],
    ["deadline while still connecting", new CallAbortedError("h:1", false, undefined, true), "fail", "fail"],
    ["caller's cancel after sending", new CallAbortedError("h:1", true, new Error("stop"), false), "fail", "indeterminate"],
    ["etcdserver: request timed out", status(GrpcStatus.unavailable, "etcdserver: request timed out"), "retry", "indeterminate"],
    ["leader changed", status(GrpcStatus.unavailable, "etcdserver: leader changed"), "retry", "indeterminate"],
    ["server stopped", status(GrpcStatus.unavailable, "etcdserver: server stopped"), "retry", "indeterminate"],
    ["server shutting down (no etcd kind)", status(GrpcStatus.unavailable, "grpc: the server is shutting down"), "retry", "indeterminate"],
    ["server-side deadline", status(GrpcStatus.deadlineExceeded, "context deadline exceeded"), "fail", "indeterminate"],
    ["UNKNOWN from the server", status(GrpcStatus.unknown, "something broke"), "fail", "indeterminate"],
    ["no leader", status(GrpcStatus.unavailable, "etcdserver: no leader"), "retry", "retry"],
    ["not leader", status(GrpcStatus.failedPrecondition, "etcdserver: not leader"), "retry", "retry"],
    ["learner", status(GrpcStatus.unavailable, "etcdserver: rpc not supported for learner"), "retry", "retry"],
    ["too many requests", status(GrpcStatus.resourceExhausted, "etcdserver: too many requests"), "retry", "retry"],
    ["compacted", status(GrpcStatus.outOfRange, "etcdserver: mvcc: required revision has been compacted"), "fail", "fail"],
    ["empty key", status(GrpcStatus.invalidArgument, "etcdserver: key is not provided"), "fail", "fail"],
    ["member not found", status(GrpcStatus.notFound, "etcdserver: member not found"), "fail", "fail"],
  ];

  for (const [what, failure, read, write] of table) {
    it(`after "${what}" a read does ${read} and a write does ${write}`, () => {
      expect(outcome(failure, "read")).toBe(read);
      expect(outcome(failure, "write")).toBe(write);
    });
  }

  it("hands back the caller's own abort reason for a cancelled read", () => {
    const reason = new Error("user gave up");
    const verdict = judgeFailure(new CallAbortedError("h:1", true, reason, false), "read", "KV/Range");
    expect(verdict).toEqual({ action: "fail", error: reason });
  });

  it("keeps the original failure as the cause of an indeterminate write", () => {
    const verdict = judgeFailure(sent, "write", "KV/Txn");
    expect(verdict.action).toBe("fail");
    const error = (verdict as { error: IndeterminateError }).error;
    expect(error.cause).toBe(sent);
    expect(error.message).toContain("KV/Txn at h:1");
  });

  it("passes errors it does not know through unchanged", () => {
    const odd = new RangeError("bug");
    expect(judgeFailure(odd, "write", "KV/Put")).toEqual({ action: "fail", error: odd });
  });
});
