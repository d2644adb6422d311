import { describe, expect, it } from "vitest";
import { MemoryKvStore } from "../storage/memory-kv/memory-kv-store.js";
import { putRequest, rangeRequest, type RequestOp } from "./command.js";
import { TxnResponseTooLargeError } from "./errors.js";
import { Mvcc } from "./mvcc.js";
import { applyCommand, bytes, put, text } from "./testing/mvcc-conformance.js";

const LIMIT_BYTES = 4096;

function everything(mvcc: Mvcc): string[] {
  return mvcc.range(rangeRequest(bytes("\0"), { rangeEnd: bytes("\0") })).kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`);
}

describe("the answer size of a Txn's ranges", () => {
  const fill = (mvcc: Mvcc) => {
    for (let i = 0; i < 40; i++) put(mvcc, `big/${String(i).padStart(2, "0")}`, "v".repeat(100));
  };
  const rangeOp = (fields: Parameters<typeof rangeRequest>[1] = {}): RequestOp => ({ type: "range", request: rangeRequest(bytes("big/"), { rangeEnd: bytes("big0"), ...fields }) });
  const putOp: RequestOp = { type: "put", request: putRequest(bytes("written"), bytes("by the txn")) };

  it("refuses a txn whose ranges would answer more than the limit, before anything of it is applied", () => {
    const mvcc = new Mvcc(new MemoryKvStore(), { txnRangeResponseBytesMax: LIMIT_BYTES });
    fill(mvcc);
    const before = { all: everything(mvcc), revision: mvcc.currentRevision() };
    const applied = applyCommand(mvcc, { type: "txn", request: { compare: [], success: [putOp, rangeOp()], failure: [] } });
    expect(applied.outcome?.ok).toBe(false);
    const error = applied.outcome?.ok === false ? applied.outcome.error : null;
    expect(error).toBeInstanceOf(TxnResponseTooLargeError);
    expect(error?.message).toMatch(/^cairn: txn range responses too large \(at least \d+ bytes, limit 4096\); nothing was applied/);
    expect({ all: everything(mvcc), revision: mvcc.currentRevision() }).toEqual(before);
  });

  it("counts every range on the txn's path, nested txns included, and lets bounded ones through", () => {
    const mvcc = new Mvcc(new MemoryKvStore(), { txnRangeResponseBytesMax: LIMIT_BYTES });
    fill(mvcc);
    // Each range alone fits (20 kvs of about 160 bytes); two on the same path do not.
    const half = rangeOp({ limit: 20 });
    const nested: RequestOp = { type: "txn", request: { compare: [], success: [half], failure: [] } };
    const refused = applyCommand(mvcc, { type: "txn", request: { compare: [], success: [half, nested], failure: [] } });
    expect(refused.outcome?.ok === false && refused.outcome.error).toBeInstanceOf(TxnResponseTooLargeError);
    const keysOnly = applyCommand(mvcc, { type: "txn", request: { compare: [], success: [rangeOp({ keysOnly: true }), putOp], failure: [] } });
    expect(keysOnly.outcome?.ok).toBe(true);
    const counted = applyCommand(mvcc, { type: "txn", request: { compare: [], success: [half, rangeOp({ countOnly: true })], failure: [] } });
    expect(counted.outcome?.ok).toBe(true);
    // Only the path taken counts: the big range sits in the branch not taken.
    const other = applyCommand(mvcc, { type: "txn", request: { compare: [], success: [], failure: [rangeOp()] } });
    expect(other.outcome?.ok).toBe(true);
  });
});
