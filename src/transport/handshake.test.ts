import { describe, expect, it } from "vitest";
import { clusterId, nodeId } from "../lib/ids.js";
import { HandshakeDecodeError } from "./errors.js";
import {
  checkAccept, checkHello, ConnectionKind, decodeAccept, decodeHello, decodeRefusal, encodeAccept, encodeHello,
  encodeRefusal, PROTOCOL_VERSION, readHandshakeVersion, RefuseCode, REFUSE_REASON_BYTES_MAX,
} from "./handshake.js";
import { NODE_1, NODE_2 } from "./test-helpers.js";

const CLUSTER = clusterId(0xcdf818194e3a8c32n);
const local = { version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: NODE_2 };
const hello = { version: PROTOCOL_VERSION, kind: ConnectionKind.Messages, clusterId: CLUSTER, sender: NODE_1, receiver: NODE_2 };

describe("handshake", () => {
  it("round-trips hello, accept and refusal frames", () => {
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const accept = { version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: NODE_2 };
    expect(decodeAccept(encodeAccept(accept))).toEqual(accept);
    expect(decodeRefusal(encodeRefusal({ code: RefuseCode.WrongNode, reason: "wrong node ✓" }))).toEqual({ code: RefuseCode.WrongNode, reason: "wrong node ✓" });
  });

  it("accepts a hello from the same cluster addressed to this node", () => {
    expect(checkHello(local, hello)).toBeNull();
  });

  it("refuses another cluster, another receiver, another version and a peer using this node's id, naming the ids", () => {
    expect(checkHello(local, { ...hello, clusterId: clusterId(5) })).toMatchObject({ code: RefuseCode.ClusterMismatch, reason: expect.stringContaining("cdf818194e3a8c32") });
    expect(checkHello(local, { ...hello, receiver: nodeId(77) })).toMatchObject({ code: RefuseCode.WrongNode, reason: expect.stringContaining("4d") });
    expect(checkHello(local, { ...hello, version: 9 })).toMatchObject({ code: RefuseCode.VersionMismatch, reason: expect.stringContaining("version 9") });
    expect(checkHello(local, { ...hello, sender: NODE_2 })).toMatchObject({ code: RefuseCode.DuplicateNodeId });
  });

  it("lets the dialer refuse an answer from the wrong node or cluster", () => {
    const identity = { version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: NODE_1 };
    expect(checkAccept(identity, NODE_2, { version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: NODE_2 })).toBeNull();
    expect(checkAccept(identity, NODE_2, { version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: nodeId(9) })).toMatchObject({ code: RefuseCode.WrongNode });
    expect(checkAccept(identity, NODE_2, { version: PROTOCOL_VERSION, clusterId: clusterId(1), nodeId: NODE_2 })).toMatchObject({ code: RefuseCode.ClusterMismatch });
  });

  it("rejects malformed handshake frames with a HandshakeDecodeError", () => {
    const good = encodeHello(hello);
    expect(() => readHandshakeVersion(good.subarray(0, 5))).toThrow(HandshakeDecodeError);
    expect(() => decodeHello(Buffer.concat([good, Buffer.from([0])]))).toThrow(HandshakeDecodeError);
    const badMagic = Buffer.from(good);
    badMagic[0] ^= 0xff;
    expect(() => decodeHello(badMagic)).toThrow(/magic/);
    const badKind = Buffer.from(good);
    badKind[6] = 7;
    expect(() => decodeHello(badKind)).toThrow(/kind 7/);
    expect(() => decodeRefusal(Buffer.from([200, 65]))).toThrow(/code 200/);
    expect(() => decodeRefusal(Buffer.alloc(0))).toThrow(HandshakeDecodeError);
  });

  it("reads the version of a hello whatever follows it, so another version is told apart from garbage", () => {
    const future = Buffer.concat([encodeHello({ ...hello, version: 2 }).subarray(0, 6), Buffer.alloc(100)]);
    expect(readHandshakeVersion(future)).toBe(2);
  });

  it("caps the refusal reason", () => {
    const refusal = decodeRefusal(encodeRefusal({ code: RefuseCode.BadHandshake, reason: "x".repeat(5000) }));
    expect(refusal.reason.length).toBe(REFUSE_REASON_BYTES_MAX);
  });
});
