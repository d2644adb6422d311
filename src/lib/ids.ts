/**
 * Branded identifiers. Member, cluster and lease ids are random 64-bit values
 * in etcd, so they are bigint here end to end: a number silently loses the low
 * bits above 2^53. Terms and log indexes stay plain numbers (they count up
 * from zero and stay far below 2^53) but get named aliases for readability.
 */
declare const brand: unique symbol;
type Brand<T, Name extends string> = T & { readonly [brand]: Name };

/** A Raft node / etcd member id: a 64-bit unsigned integer. 0n means "none". */
export type NodeId = Brand<bigint, "NodeId">;
/** A cluster id: a 64-bit unsigned integer. */
export type ClusterId = Brand<bigint, "ClusterId">;
/** A Raft group id: one per replicated state machine on a node. Group 0 is the cluster's own group. */
export type GroupId = Brand<number, "GroupId">;
/** A Raft term. */
export type Term = number;
/** A position in a Raft log (1-based; 0 means "before the first entry"). */
export type LogIndex = number;

export const NO_NODE = 0n as NodeId;
export const MAX_UINT64 = (1n << 64n) - 1n;

export function nodeId(value: bigint | number | string): NodeId {
  const id = BigInt(value);
  if (id < 0n || id > MAX_UINT64) throw new RangeError(`node id out of 64-bit range: ${String(value)}`);
  return id as NodeId;
}

export function clusterId(value: bigint | number | string): ClusterId {
  const id = BigInt(value);
  if (id < 0n || id > MAX_UINT64) throw new RangeError(`cluster id out of 64-bit range: ${String(value)}`);
  return id as ClusterId;
}

export function groupId(value: number): GroupId {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`group id must be a uint32, got ${value}`);
  return value as GroupId;
}

/** etcd prints member ids as lower-case hex without padding. */
export function formatId(id: bigint): string {
  return id.toString(16);
}
