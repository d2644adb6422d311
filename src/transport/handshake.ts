/**
 * The handshake every connection starts with, before any Raft byte flows.
 *
 * The dialer sends Hello (protocol version, what the connection is for, its
 * cluster id, its own node id and the node id it expects to reach). The
 * listener checks it and answers Accept (its own cluster and node id, which
 * the dialer checks in turn) or Refuse (a code and a sentence) and closes.
 * Misconfigured clusters are common (a node started with another cluster's
 * token, a URL pointing at the wrong member after a replacement); the point of
 * the handshake is that such a mistake is refused loudly, with the reason in
 * the logs of both nodes, instead of quietly mixing two clusters' logs.
 *
 *   Hello:  u32 magic, u16 version, u8 kind, u64 cluster, u64 sender, u64 expected receiver
 *   Accept: u32 magic, u16 version, u64 cluster, u64 node
 *   Refuse: u8 code, UTF-8 reason (at most REFUSE_REASON_BYTES_MAX bytes)
 *
 * Magic and version come first in every version of the protocol, so a node
 * can always tell a peer speaking another version apart from garbage.
 */
import { formatId, type ClusterId, type NodeId } from "../lib/ids.js";
import { HandshakeDecodeError } from "./errors.js";

/** "CRNP": Cairn peer protocol. */
export const HANDSHAKE_MAGIC = 0x43524e50;
export const PROTOCOL_VERSION = 1;
/** Frames before the handshake completes are tiny; a peer that has not identified itself gets no more buffer than this. */
export const HANDSHAKE_FRAME_BYTES_MAX = 1024;
export const REFUSE_REASON_BYTES_MAX = 512;

const HELLO_BYTES = 4 + 2 + 1 + 8 * 3;
const ACCEPT_BYTES = 4 + 2 + 8 * 2;

export const ConnectionKind = {
  /** Raft messages, batched; long-lived. */
  Messages: 1,
  /** One snapshot, streamed; closed when done. */
  Snapshot: 2,
  /**
   * A member joining a running cluster asks who the cluster is (its id and
   * members) before it knows its own ids. The listener answers one Discovery
   * frame and closes; nothing else flows on such a connection.
   */
  Discover: 3,
} as const;
export type ConnectionKind = (typeof ConnectionKind)[keyof typeof ConnectionKind];

export const RefuseCode = {
  VersionMismatch: 1,
  ClusterMismatch: 2,
  WrongNode: 3,
  DuplicateNodeId: 4,
  BadHandshake: 5,
  ShuttingDown: 6,
  TooManyConnections: 7,
  ProtocolViolation: 8,
} as const;
export type RefuseCode = (typeof RefuseCode)[keyof typeof RefuseCode];

export interface Hello {
  readonly version: number;
  readonly kind: ConnectionKind;
  readonly clusterId: ClusterId;
  readonly sender: NodeId;
  readonly receiver: NodeId;
}

export interface Accept {
  readonly version: number;
  readonly clusterId: ClusterId;
  readonly nodeId: NodeId;
}

export interface Refusal {
  readonly code: RefuseCode;
  readonly reason: string;
}

export function encodeHello(hello: Hello): Buffer {
  const buffer = Buffer.allocUnsafe(HELLO_BYTES);
  let at = buffer.writeUInt32BE(HANDSHAKE_MAGIC, 0);
  at = buffer.writeUInt16BE(hello.version, at);
  at = buffer.writeUInt8(hello.kind, at);
  at = buffer.writeBigUInt64BE(hello.clusterId, at);
  at = buffer.writeBigUInt64BE(hello.sender, at);
  buffer.writeBigUInt64BE(hello.receiver, at);
  return buffer;
}

/** Reads the magic and version only: enough to refuse a peer of another version with a clear reason. */
export function readHandshakeVersion(payload: Buffer): number {
  if (payload.length < 6) throw new HandshakeDecodeError(`handshake of ${payload.length} bytes is too short`);
  const magic = payload.readUInt32BE(0);
  if (magic !== HANDSHAKE_MAGIC) throw new HandshakeDecodeError(`bad handshake magic 0x${magic.toString(16)}`);
  return payload.readUInt16BE(4);
}

/** Decodes a Hello of this protocol version (check the version with readHandshakeVersion first). */
export function decodeHello(payload: Buffer): Hello {
  const version = readHandshakeVersion(payload);
  if (payload.length !== HELLO_BYTES) throw new HandshakeDecodeError(`hello must be ${HELLO_BYTES} bytes, got ${payload.length}`);
  const kind = payload.readUInt8(6);
  if (kind !== ConnectionKind.Messages && kind !== ConnectionKind.Snapshot && kind !== ConnectionKind.Discover) {
    throw new HandshakeDecodeError(`unknown connection kind ${kind}`);
  }
  return {
    version,
    kind,
    clusterId: payload.readBigUInt64BE(7) as ClusterId,
    sender: payload.readBigUInt64BE(15) as NodeId,
    receiver: payload.readBigUInt64BE(23) as NodeId,
  };
}

export function encodeAccept(accept: Accept): Buffer {
  const buffer = Buffer.allocUnsafe(ACCEPT_BYTES);
  let at = buffer.writeUInt32BE(HANDSHAKE_MAGIC, 0);
  at = buffer.writeUInt16BE(accept.version, at);
  at = buffer.writeBigUInt64BE(accept.clusterId, at);
  buffer.writeBigUInt64BE(accept.nodeId, at);
  return buffer;
}

export function decodeAccept(payload: Buffer): Accept {
  const version = readHandshakeVersion(payload);
  if (payload.length !== ACCEPT_BYTES) throw new HandshakeDecodeError(`accept must be ${ACCEPT_BYTES} bytes, got ${payload.length}`);
  return {
    version,
    clusterId: payload.readBigUInt64BE(6) as ClusterId,
    nodeId: payload.readBigUInt64BE(14) as NodeId,
  };
}

export function encodeRefusal(refusal: Refusal): Buffer {
  const text = Buffer.from(refusal.reason, "utf8").subarray(0, REFUSE_REASON_BYTES_MAX);
  const buffer = Buffer.allocUnsafe(1 + text.length);
  buffer.writeUInt8(refusal.code, 0);
  buffer.set(text, 1);
  return buffer;
}

export function decodeRefusal(payload: Buffer): Refusal {
  if (payload.length < 1) throw new HandshakeDecodeError("refusal without a code");
  if (payload.length > 1 + REFUSE_REASON_BYTES_MAX) throw new HandshakeDecodeError("refusal reason too long");
  const code = payload.readUInt8(0);
  if (!Object.values(RefuseCode).includes(code as RefuseCode)) throw new HandshakeDecodeError(`unknown refusal code ${code}`);
  return { code: code as RefuseCode, reason: payload.toString("utf8", 1) };
}

export interface LocalIdentity {
  readonly version: number;
  readonly clusterId: ClusterId;
  readonly nodeId: NodeId;
}

/** The listener's check of a Hello: null to accept, or why not. */
export function checkHello(local: LocalIdentity, hello: Hello): Refusal | null {
  const peer = formatId(hello.sender);
  if (hello.version !== local.version) {
    return { code: RefuseCode.VersionMismatch, reason: `protocol version mismatch: node ${formatId(local.nodeId)} speaks version ${local.version}, peer ${peer} speaks version ${hello.version}` };
  }
  // A joining member does not know the cluster or its own id yet: that is what it asks for.
  if (hello.kind === ConnectionKind.Discover) return null;
  if (hello.clusterId !== local.clusterId) {
    return { code: RefuseCode.ClusterMismatch, reason: `cluster id mismatch: node ${formatId(local.nodeId)} is in cluster ${formatId(local.clusterId)}, peer ${peer} is in cluster ${formatId(hello.clusterId)}` };
  }
  if (hello.receiver !== local.nodeId) {
    return { code: RefuseCode.WrongNode, reason: `wrong node: peer ${peer} expected node ${formatId(hello.receiver)} but reached node ${formatId(local.nodeId)}` };
  }
  if (hello.sender === local.nodeId || hello.sender === 0n) {
    return { code: RefuseCode.DuplicateNodeId, reason: `peer claims node id ${peer}, which is not a valid id for another member` };
  }
  return null;
}

/** The dialer's check of an Accept: the node that answered must be the node it meant to reach, in its own cluster. */
export function checkAccept(local: LocalIdentity, expected: NodeId, accept: Accept): Refusal | null {
  if (accept.version !== local.version) {
    return { code: RefuseCode.VersionMismatch, reason: `protocol version mismatch: we speak version ${local.version}, node ${formatId(accept.nodeId)} answered with version ${accept.version}` };
  }
  if (accept.clusterId !== local.clusterId) {
    return { code: RefuseCode.ClusterMismatch, reason: `cluster id mismatch: we are in cluster ${formatId(local.clusterId)}, node ${formatId(accept.nodeId)} answered from cluster ${formatId(accept.clusterId)}` };
  }
  if (accept.nodeId !== expected) {
    return { code: RefuseCode.WrongNode, reason: `wrong node: expected node ${formatId(expected)} but node ${formatId(accept.nodeId)} answered` };
  }
  return null;
}
