import { describe, expect, it } from "vitest";
import { readPutRequest } from "../../src/api/protobuf/etcd-codecs.js";
import { ProtobufDecodeError, ProtoReader, ProtoWriter } from "../../src/api/protobuf/wire.js";
import { BenchWireError, decodeStatusResponse, KEY_BYTES, PutRequestEncoder, unframe, VALUE_BYTES_MAX } from "./grpc-wire.js";

describe("PutRequestEncoder", () => {
  it("frames a PutRequest the server's own decoder reads back with key and value", () => {
    const value = Buffer.alloc(256, 0x61);
    const framed = new PutRequestEncoder(value).encode(1234);
    const [body] = unframe(framed);
    const request = readPutRequest(new ProtoReader(body));
    expect(Buffer.from(request.key).toString()).toBe("bench/server/000001234");
    expect(request.key.length).toBe(KEY_BYTES);
    expect(Buffer.from(request.value).equals(value)).toBe(true);
  });

  it("gives each key number its own key and leaves earlier requests untouched", () => {
    const encoder = new PutRequestEncoder(Buffer.from("v"));
    const first = encoder.encode(0);
    const second = encoder.encode(999_999_999);
    expect(Buffer.from(readPutRequest(new ProtoReader(unframe(first)[0])).key).toString()).toBe("bench/server/000000000");
    expect(Buffer.from(readPutRequest(new ProtoReader(unframe(second)[0])).key).toString()).toBe("bench/server/999999999");
  });

  it("refuses key numbers and value sizes it cannot encode", () => {
    const encoder = new PutRequestEncoder(Buffer.from("v"));
    expect(() => encoder.encode(-1)).toThrow(BenchWireError);
    expect(() => encoder.encode(1e9)).toThrow(BenchWireError);
    expect(() => encoder.encode(1.5)).toThrow(BenchWireError);
    expect(() => new PutRequestEncoder(Buffer.alloc(0))).toThrow(BenchWireError);
    expect(() => new PutRequestEncoder(Buffer.alloc(VALUE_BYTES_MAX + 1))).toThrow(BenchWireError);
    expect(new PutRequestEncoder(Buffer.alloc(VALUE_BYTES_MAX)).encode(1).length).toBeGreaterThan(VALUE_BYTES_MAX);
  });
});

describe("unframe", () => {
  it("splits consecutive gRPC messages", () => {
    const bytes = Buffer.from([0, 0, 0, 0, 2, 9, 9, 0, 0, 0, 0, 0]);
    expect(unframe(bytes).map((message) => [...message])).toEqual([[9, 9], []]);
  });

  it("refuses truncated and compressed frames", () => {
    expect(() => unframe(Buffer.from([0, 0, 0]))).toThrow(BenchWireError);
    expect(() => unframe(Buffer.from([0, 0, 0, 0, 5, 1]))).toThrow(BenchWireError);
    expect(() => unframe(Buffer.from([1, 0, 0, 0, 0]))).toThrow(BenchWireError);
  });
});

describe("decodeStatusResponse", () => {
  function statusBytes(memberId: bigint, leaderId: bigint): Buffer {
    const writer = new ProtoWriter();
    const header = writer.beginLengthDelimited(1);
    writer.int64BigintField(1, 0x1234n);
    writer.int64BigintField(2, memberId);
    writer.int64NumberField(3, 77);
    writer.endLengthDelimited(header);
    writer.stringField(2, "3.4.23");
    writer.int64NumberField(3, 4096);
    writer.int64BigintField(4, leaderId);
    writer.int64NumberField(5, 900);
    writer.int64NumberField(6, 3);
    writer.int64NumberField(9, 1000);
    return Buffer.from(writer.finish());
  }

  it("reads the member id and revision from the header, the leader, term, index and version", () => {
    const status = decodeStatusResponse(statusBytes(0xfedc_ba98_7654_3210n, 0x8000_0000_0000_0001n));
    expect(status).toEqual({ memberId: 0xfedc_ba98_7654_3210n, revision: 77, leaderId: 0x8000_0000_0000_0001n, raftTerm: 3, raftIndex: 900, version: "3.4.23" });
  });

  it("refuses a leader field with the wrong wire type", () => {
    const writer = new ProtoWriter();
    writer.stringField(4, "not a number");
    expect(() => decodeStatusResponse(writer.finish())).toThrow(ProtobufDecodeError);
  });
});
