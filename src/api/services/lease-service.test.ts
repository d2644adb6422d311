import { describe, expect, it } from "vitest";
import type { LeaseBackend } from "../backend.js";
import type { CallContext } from "../grpc/server.js";
import { GrpcError, GrpcStatus } from "../grpc/status.js";
import type { LeaseKeepAliveResponse } from "../protobuf/messages.js";
import { generateLeaseId, LeaseService } from "./lease-service.js";
import { FakeKvBackend } from "./test-support.js";

const context = (): CallContext => ({ signal: new AbortController().signal, peer: "test", deadlineMs: undefined, metadata: {}, requestBytes: 0 });

function setup(): { backend: FakeKvBackend & LeaseBackend; service: LeaseService; remaining: Map<bigint, number> } {
  const remaining = new Map<bigint, number>();
  const backend = Object.assign(new FakeKvBackend(), {
    leaseRemainingMs: (id: bigint) => remaining.get(id) ?? null,
    leaseTtlSecondsMin: 2,
  });
  let next = 100n;
  return { backend, service: new LeaseService(backend, () => next++), remaining };
}

async function failureOf(promise: Promise<unknown>): Promise<GrpcError> {
  const outcome = await promise.then(() => null, (error: unknown) => error);
  if (!(outcome instanceof GrpcError)) throw new Error(`expected a GrpcError, got ${String(outcome)}`);
  return outcome;
}

describe("the Lease service", () => {
  it("grants with the requested id, or a generated one, raising a short TTL to the minimum", async () => {
    const { service, backend } = setup();
    expect(await service.leaseGrant({ TTL: 30, ID: 0x7fff_ffff_ffff_fff0n }, context())).toMatchObject({ ID: 0x7fff_ffff_ffff_fff0n, TTL: 30, error: "" });
    expect(await service.leaseGrant({ TTL: 0, ID: 0n }, context())).toMatchObject({ ID: 100n, TTL: 2 });
    expect(await service.leaseGrant({ TTL: -5, ID: 0n }, context())).toMatchObject({ ID: 101n, TTL: 2 });
    expect(backend.mvcc.leaseIds().sort()).toEqual([100n, 101n, 0x7fff_ffff_ffff_fff0n]);
  });

  it("refuses a duplicate id and a TTL above etcd's maximum with etcd's codes and texts, proposing nothing for the latter", async () => {
    const { service, backend } = setup();
    await service.leaseGrant({ TTL: 10, ID: 7n }, context());
    const duplicate = await failureOf(service.leaseGrant({ TTL: 10, ID: 7n }, context()));
    expect([duplicate.code, duplicate.message]).toEqual([GrpcStatus.failedPrecondition, "etcdserver: lease already exists"]);
    const proposals = backend.proposed.length;
    const tooLong = await failureOf(service.leaseGrant({ TTL: 9_000_000_001, ID: 8n }, context()));
    expect([tooLong.code, tooLong.message]).toEqual([GrpcStatus.outOfRange, "etcdserver: too large lease TTL"]);
    expect(backend.proposed.length).toBe(proposals);
  });

  it("revokes, and answers NOT_FOUND for a lease that does not exist", async () => {
    const { service, backend } = setup();
    await service.leaseGrant({ TTL: 10, ID: 9n }, context());
    await backend.propose({ type: "put", request: { key: Buffer.from("k"), value: Buffer.from("v"), lease: 9n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    const revoked = await service.leaseRevoke({ ID: 9n }, context());
    expect(revoked.header?.revision).toBe(3);
    const missing = await failureOf(service.leaseRevoke({ ID: 9n }, context()));
    expect([missing.code, missing.message]).toEqual([GrpcStatus.notFound, "etcdserver: requested lease not found"]);
  });

  it("answers each keep-alive on the stream in order, with TTL 0 for a missing lease, without ending the stream", async () => {
    const { service } = setup();
    await service.leaseGrant({ TTL: 10, ID: 11n }, context());
    async function* requests() {
      yield { ID: 11n };
      yield { ID: 12n };
      yield { ID: 11n };
    }
    const sent: LeaseKeepAliveResponse[] = [];
    await service.leaseKeepAlive(requests(), { send: async (message) => { sent.push(message); } }, context());
    expect(sent.map((response) => [response.ID, response.TTL])).toEqual([[11n, 10], [12n, 0], [11n, 10]]);
  });

  it("reports the remaining TTL by this member's clock, the granted TTL and keys, and TTL -1 for a missing lease", async () => {
    const { service, backend, remaining } = setup();
    await service.leaseGrant({ TTL: 10, ID: 13n }, context());
    await backend.propose({ type: "put", request: { key: Buffer.from("b"), value: Buffer.from("v"), lease: 13n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    await backend.propose({ type: "put", request: { key: Buffer.from("a"), value: Buffer.from("v"), lease: 13n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    remaining.set(13n, 7900);
    const withKeys = await service.leaseTimeToLive({ ID: 13n, keys: true }, context());
    expect({ ...withKeys, keys: withKeys.keys.map((key) => Buffer.from(key).toString()) }).toMatchObject({ ID: 13n, TTL: 7, grantedTTL: 10, keys: ["a", "b"] });
    expect((await service.leaseTimeToLive({ ID: 13n, keys: false }, context())).keys).toEqual([]);
    expect(await service.leaseTimeToLive({ ID: 14n, keys: true }, context())).toMatchObject({ ID: 14n, TTL: -1, grantedTTL: 0, keys: [] });
    expect((await service.leaseLeases({}, context())).leases).toEqual([{ ID: 13n }]);
  });

  it("generates positive 63-bit ids", () => {
    for (let i = 0; i < 100; i++) {
      const id = generateLeaseId();
      expect(id > 0n && id < 1n << 63n).toBe(true);
    }
  });
});
