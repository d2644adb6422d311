import { describe, it, expect } from "vitest";
import fc from "fast-check";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import { etcdCodecs, TXN_NESTING_DEPTH_MAX } from "./etcd-codecs.js";
import { ProtobufDecodeError, ProtoWriter, WireType } from "./wire.js";
import type { Compare, KeyValue, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse } from "./messages.js";

// protobufjs, loaded from our own .proto files, is the reference encoder.
const root = protobuf.loadSync(fileURLToPath(new URL("../proto/rpc.proto", import.meta.url)));
root.resolveAll();
const type = (name: string): protobuf.Type => root.lookupType(name);

function isDefault(value: unknown): boolean {
  return value === 0 || value === false || value === "" || value === 0n || (value instanceof Uint8Array && value.length === 0);
}

/** Our message shape → protobufjs's input shape, guided by reflection; proto3 defaults are dropped so the reference omits them too. */
function toReference(messageType: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !messageType.fields[key]) throw new Error(`${messageType.name} has no field ${key}`);
  }
  const scalar = (item: unknown): unknown => (typeof item === "bigint" ? item.toString() : item);
  const out: Record<string, unknown> = {};
  for (const field of messageType.fieldsArray) {
    const item = value[field.name];
    if (item === undefined) continue;
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (field.repeated) {
      const items = item as unknown[];
      if (items.length === 0) continue;
      out[field.name] = nested ? items.map((entry) => toReference(nested, entry as Record<string, unknown>)) : items.map(scalar);
    } else if (nested) {
      out[field.name] = toReference(nested, item as Record<string, unknown>);
    } else if (field.partOf || !isDefault(item)) {
      out[field.name] = scalar(item);
    }
  }
  return out;
}

function referenceEncode(typeName: string, value: object): Uint8Array {
  const messageType = type(typeName);
  return messageType.encode(messageType.fromObject(toReference(messageType, value as Record<string, unknown>))).finish();
}

// ------------------------------------------------------------ arbitraries

const bytes = fc.uint8Array({ maxLength: 24 }).map((array) => Buffer.from(array));
const int64Number = fc.maxSafeInteger();
const uint64Number = fc.maxSafeNat();
const uint64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const int64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const enumOf = (count: number) => fc.integer({ min: 0, max: count - 1 });

const header: fc.Arbitrary<ResponseHeader> = fc.record({ clusterId: uint64, memberId: uint64, revision: int64Number, raftTerm: uint64Number });
const keyValue: fc.Arbitrary<KeyValue> = fc.record({
  key: bytes, createRevision: int64Number, modRevision: int64Number, version: int64Number, value: bytes, lease: int64,
});
const rangeRequest = fc.record({
  key: bytes, rangeEnd: bytes, limit: int64Number, revision: int64Number, sortOrder: enumOf(3), sortTarget: enumOf(5),
  serializable: fc.boolean(), keysOnly: fc.boolean(), countOnly: fc.boolean(),
  minModRevision: int64Number, maxModRevision: int64Number, minCreateRevision: int64Number, maxCreateRevision: int64Number,
});
const putRequest = fc.record({ key: bytes, value: bytes, lease: int64, prevKv: fc.boolean(), ignoreValue: fc.boolean(), ignoreLease: fc.boolean() });
const deleteRangeRequest = fc.record({ key: bytes, rangeEnd: bytes, prevKv: fc.boolean() });
const rangeResponse = fc.record({ header: fc.option(header, { nil: undefined }), kvs: fc.array(keyValue, { maxLength: 3 }), more: fc.boolean(), count: int64Number });
const putResponse = fc.record({ header: fc.option(header, { nil: undefined }), prevKv: fc.option(keyValue, { nil: undefined }) });
const deleteRangeResponse = fc.record({ header: fc.option(header, { nil: undefined }), deleted: int64Number, prevKvs: fc.array(keyValue, { maxLength: 3 }) });

const compareUnion = fc.oneof(
  fc.constant({}),
  int64Number.map((version) => ({ version })),
  int64Number.map((createRevision) => ({ createRevision })),
  int64Number.map((modRevision) => ({ modRevision })),
  bytes.map((value) => ({ value })),
  int64.map((lease) => ({ lease })),
);
const compare: fc.Arbitrary<Compare> = fc
  .tuple(fc.record({ result: enumOf(4), target: enumOf(5), key: bytes, rangeEnd: bytes }), compareUnion)
  .map(([base, union]) => ({ ...base, ...union }));

const { txnRequest } = fc.letrec<{ txnRequest: TxnRequest; requestOp: RequestOp }>((tie) => ({
  txnRequest: fc.record({
    compare: fc.array(compare, { maxLength: 3 }),
    success: fc.array(tie("requestOp"), { maxLength: 3, depthIdentifier: "txn" }),
    failure: fc.array(tie("requestOp"), { maxLength: 3, depthIdentifier: "txn" }),
  }),
  requestOp: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    rangeRequest.map((requestRange) => ({ requestRange })),
    putRequest.map((requestPut) => ({ requestPut })),
    deleteRangeRequest.map((requestDeleteRange) => ({ requestDeleteRange })),
    tie("txnRequest").map((requestTxn) => ({ requestTxn: requestTxn as TxnRequest })),
  ),
}));

const { txnResponse } = fc.letrec<{ txnResponse: TxnResponse; responseOp: ResponseOp }>((tie) => ({
  txnResponse: fc.record({
    header: fc.option(header, { nil: undefined }),
    succeeded: fc.boolean(),
    responses: fc.array(tie("responseOp"), { maxLength: 3, depthIdentifier: "txnResponse" }),
  }),
  responseOp: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    rangeResponse.map((responseRange) => ({ responseRange })),
    putResponse.map((responsePut) => ({ responsePut })),
    deleteRangeResponse.map((responseDeleteRange) => ({ responseDeleteRange })),
    tie("txnResponse").map((responseTxn) => ({ responseTxn: responseTxn as TxnResponse })),
  ),
}));

const event = fc.record({ type: enumOf(2), kv: fc.option(keyValue, { nil: undefined }), prevKv: fc.option(keyValue, { nil: undefined }) });
const watchRequest = fc.oneof(
  fc.record({
    key: bytes, rangeEnd: bytes, startRevision: int64Number, progressNotify: fc.boolean(),
    filters: fc.array(enumOf(2), { maxLength: 3 }), prevKv: fc.boolean(), watchId: int64Number, fragment: fc.boolean(),
  }).map((createRequest) => ({ createRequest })),
  int64Number.map((watchId) => ({ cancelRequest: { watchId } })),
  fc.constant({ progressRequest: {} }),
);
const watchResponse = fc.record({
  header: fc.option(header, { nil: undefined }), watchId: int64Number, created: fc.boolean(), canceled: fc.boolean(),
  compactRevision: int64Number, cancelReason: fc.string({ maxLength: 12 }), fragment: fc.boolean(), events: fc.array(event, { maxLength: 3 }),
});

const optionalHeader = fc.option(header, { nil: undefined });

interface Case {
  codec: keyof typeof etcdCodecs;
  typeName: string;
  arbitrary: fc.Arbitrary<object>;
}

const cases: Case[] = [
  { codec: "rangeRequest", typeName: "etcdserverpb.RangeRequest", arbitrary: rangeRequest },
  { codec: "rangeResponse", typeName: "etcdserverpb.RangeResponse", arbitrary: rangeResponse },
  { codec: "putRequest", typeName: "etcdserverpb.PutRequest", arbitrary: putRequest },
  { codec: "putResponse", typeName: "etcdserverpb.PutResponse", arbitrary: putResponse },
  { codec: "deleteRangeRequest", typeName: "etcdserverpb.DeleteRangeRequest", arbitrary: deleteRangeRequest },
  { codec: "deleteRangeResponse", typeName: "etcdserverpb.DeleteRangeResponse", arbitrary: deleteRangeResponse },
  { codec: "txnRequest", typeName: "etcdserverpb.TxnRequest", arbitrary: txnRequest },
  { codec: "txnResponse", typeName: "etcdserverpb.TxnResponse", arbitrary: txnResponse },
  { codec: "compactionRequest", typeName: "etcdserverpb.CompactionRequest", arbitrary: fc.record({ revision: int64Number, physical: fc.boolean() }) },
  { codec: "compactionResponse", typeName: "etcdserverpb.CompactionResponse", arbitrary: fc.record({ header: optionalHeader }) },
  { codec: "watchRequest", typeName: "etcdserverpb.WatchRequest", arbitrary: watchRequest },
  { codec: "watchResponse", typeName: "etcdserverpb.WatchResponse", arbitrary: watchResponse },
  { codec: "leaseGrantRequest", typeName: "etcdserverpb.LeaseGrantRequest", arbitrary: fc.record({ TTL: int64Number, ID: int64 }) },
  { codec: "leaseGrantResponse", typeName: "etcdserverpb.LeaseGrantResponse", arbitrary: fc.record({ header: optionalHeader, ID: int64, TTL: int64Number, error: fc.string({ maxLength: 12 }) }) },
  { codec: "leaseRevokeRequest", typeName: "etcdserverpb.LeaseRevokeRequest", arbitrary: fc.record({ ID: int64 }) },
  { codec: "leaseRevokeResponse", typeName: "etcdserverpb.LeaseRevokeResponse", arbitrary: fc.record({ header: optionalHeader }) },
  { codec: "leaseKeepAliveRequest", typeName: "etcdserverpb.LeaseKeepAliveRequest", arbitrary: fc.record({ ID: int64 }) },
  { codec: "leaseKeepAliveResponse", typeName: "etcdserverpb.LeaseKeepAliveResponse", arbitrary: fc.record({ header: optionalHeader, ID: int64, TTL: int64Number }) },
  { codec: "leaseTimeToLiveRequest", typeName: "etcdserverpb.LeaseTimeToLiveRequest", arbitrary: fc.record({ ID: int64, keys: fc.boolean() }) },
  { codec: "leaseTimeToLiveResponse", typeName: "etcdserverpb.LeaseTimeToLiveResponse", arbitrary: fc.record({ header: optionalHeader, ID: int64, TTL: int64Number, grantedTTL: int64Number, keys: fc.array(bytes, { maxLength: 3 }) }) },
  { codec: "leaseLeasesResponse", typeName: "etcdserverpb.LeaseLeasesResponse", arbitrary: fc.record({ header: optionalHeader, leases: fc.array(fc.record({ ID: int64 }), { maxLength: 3 }) }) },
];

/** Strips undefined members so decoded values compare equal to generated ones. */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined).map(([key, item]) => [key, withoutUndefined(item)]));
}

describe("precompiled etcd codecs", () => {
  for (const testCase of cases) {
    it(`encode ${testCase.typeName} byte for byte as protobufjs does, and decode it back to the same value`, () => {
      const codec = etcdCodecs[testCase.codec] as { encode(value: object): Uint8Array; decode(bytes: Uint8Array): object };
      fc.assert(
        fc.property(testCase.arbitrary, (message) => {
          const ours = codec.encode(message);
          const reference = referenceEncode(testCase.typeName, message);
          expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(reference).toString("hex"));
          expect(withoutUndefined(codec.decode(reference))).toEqual(withoutUndefined(message));
        }),
        { numRuns: 150 },
      );
    });
  }

  it("writes a set Compare oneof member even when it holds zero, as etcd's Go encoder does", () => {
    const bytesOut = etcdCodecs.txnRequest.encode({
      compare: [{ result: 0, target: 0, key: Buffer.from("k"), rangeEnd: Buffer.alloc(0), version: 0 }], success: [], failure: [],
    });
    const decoded = etcdCodecs.txnRequest.decode(bytesOut);
    expect(decoded.compare[0].version).toBe(0);
    expect(decoded.compare[0].modRevision).toBeUndefined();
  });

  it("prefixes an encoding with room for the gRPC frame header without changing the body", () => {
    const message = { key: Buffer.from("a"), value: Buffer.alloc(300, 7), lease: 5n, prevKv: true, ignoreValue: false, ignoreLease: false };
    const plain = etcdCodecs.putRequest.encode(message);
    const prefixed = etcdCodecs.putRequest.encodeWithPrefix?.(message, 5) ?? new Uint8Array(0);
    expect(prefixed.length).toBe(plain.length + 5);
    expect(Buffer.from(prefixed.subarray(5)).equals(Buffer.from(plain))).toBe(true);
  });

  it("refuses a Txn nested deeper than the limit instead of overflowing the stack", () => {
    let request: TxnRequest = { compare: [], success: [], failure: [] };
    for (let depth = 0; depth <= TXN_NESTING_DEPTH_MAX + 1; depth++) request = { compare: [], success: [{ requestTxn: request }], failure: [] };
    const encoded = etcdCodecs.txnRequest.encode(request);
    expect(() => etcdCodecs.txnRequest.decode(encoded)).toThrow(ProtobufDecodeError);
    expect(() => etcdCodecs.txnRequest.decode(encoded)).toThrow(/nesting deeper than 64/);
  });

  it("refuses a known field sent with the wrong wire type", () => {
    const writer = new ProtoWriter();
    writer.tag(1, WireType.varint); // key is bytes, not a varint
    writer.uint32(5);
    expect(() => etcdCodecs.putRequest.decode(writer.finish())).toThrow(/wire type 0, expected 2/);
  });

  it("decodes a WatchRequest that carries no request to { none }, which the service skips", () => {
    expect(etcdCodecs.watchRequest.decode(new Uint8Array(0))).toEqual({ none: {} });
  });

  it("never throws anything but ProtobufDecodeError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
        for (const codec of [etcdCodecs.txnRequest, etcdCodecs.rangeRequest, etcdCodecs.watchRequest, etcdCodecs.putResponse]) {
          try {
            (codec as { decode(bytes: Uint8Array): unknown }).decode(garbage);
          } catch (error) {
            expect(error).toBeInstanceOf(ProtobufDecodeError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
