/**
 * Members of a cluster: ids, names, URLs, and how they travel in ConfChange
 * contexts. Ids are computed the way etcd computes them, so a cluster's ids
 * are stable for a given initial configuration and token.
 */
import { createHash } from "node:crypto";
import { clusterId as makeClusterId, nodeId, type ClusterId, type NodeId } from "../lib/ids.js";

export interface Member {
  readonly id: NodeId;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export class MemberContextError extends Error {
  override name = "MemberContextError";
}

function firstUint64(digest: Buffer): bigint {
  return digest.readBigUInt64BE(0);
}

/** etcd: sha1(sorted peer URLs, the cluster token, and for members added later the time) → first 8 bytes. */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string, addedAtMs?: number): NodeId {
  const hash = createHash("sha1");
  for (const url of [...peerUrls].sort()) hash.update(url);
  hash.update(clusterToken);
  if (addedAtMs !== undefined) hash.update(String(addedAtMs));
  let id = firstUint64(hash.digest());
  if (id === 0n) id = 1n; // 0 means "none" everywhere
  return nodeId(id);
}

/** etcd: sha1 of the sorted member ids (8 bytes each, big-endian) → first 8 bytes. */
export function computeClusterId(memberIds: readonly NodeId[]): ClusterId {
  const hash = createHash("sha1");
  for (const id of [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(id);
    hash.update(bytes);
  }
  return makeClusterId(firstUint64(hash.digest()));
}

/** A member's attributes as a ConfChange context (JSON with the id as a decimal string). */
export function encodeMemberContext(member: Member): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    id: member.id.toString(), name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls, isLearner: member.isLearner,
  }));
}

export function decodeMemberContext(bytes: Uint8Array): Member {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new MemberContextError(`member context is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const record = value as Record<string, unknown>;
  const strings = (field: string): string[] => {
    const list = record[field];
    if (!Array.isArray(list) || !list.every((item) => typeof item === "string")) throw new MemberContextError(`member context: ${field} must be a list of strings`);
    return list;
  };
  if (typeof record !== "object" || record === null || typeof record.id !== "string" || !/^\d+$/.test(record.id)) {
    throw new MemberContextError("member context: id must be a decimal string");
  }
  if (typeof record.name !== "string") throw new MemberContextError("member context: name must be a string");
  return {
    id: nodeId(BigInt(record.id)),
    name: record.name,
    peerUrls: strings("peerUrls"),
    clientUrls: strings("clientUrls"),
    isLearner: record.isLearner === true,
  };
}
