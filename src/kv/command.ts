/**
 * The commands the KV state machine applies (the payloads of Raft entries),
 * shaped like etcd's v3 requests, with a compact, versioned binary encoding.
 * decodeCommand validates everything it reads: a committed entry is trusted
 * only after it parsed completely.
 */
import { CommandDecodeError } from "./errors.js";
import { readUint64, writeUint64 } from "./encoding.js";

export const SortOrder = { None: 0, Ascend: 1, Descend: 2 } as const;
export type SortOrder = (typeof SortOrder)[keyof typeof SortOrder];
export const SortTarget = { Key: 0, Version: 1, Create: 2, Mod: 3, Value: 4 } as const;
export type SortTarget = (typeof SortTarget)[keyof typeof SortTarget];
export const CompareResult = { Equal: 0, Greater: 1, Less: 2, NotEqual: 3 } as const;
export type CompareResult = (typeof CompareResult)[keyof typeof CompareResult];
export const CompareTarget = { Version: 0, Create: 1, Mod: 2, Value: 3, Lease: 4 } as const;
export type CompareTarget = (typeof CompareTarget)[keyof typeof CompareTarget];

export interface RangeRequest {
  readonly key: Uint8Array;
  /** Empty: the single key. [0]: every key >= key. Otherwise [key, rangeEnd). */
  readonly rangeEnd: Uint8Array;
  readonly limit: number;
  /** 0: the current revision. */
  readonly revision: number;
  readonly sortOrder: SortOrder;
  readonly sortTarget: SortTarget;
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  readonly minModRevision: number;
  readonly maxModRevision: number;
  readonly minCreateRevision: number;
  readonly maxCreateRevision: number;
}

export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly lease: bigint;
  readonly prevKv: boolean;
  readonly ignoreValue: boolean;
  readonly ignoreLease: boolean;
}

export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly prevKv: boolean;
}

export interface Compare {
  readonly result: CompareResult;
  readonly target: CompareTarget;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  /** The operand for target Value. */
  readonly value: Uint8Array;
  /** The operand for Version, Create and Mod. */
  readonly number: number;
  /** The operand for Lease. */
  readonly lease: bigint;
}

export type RequestOp =
  | { readonly type: "range"; readonly request: RangeRequest }
  | { readonly type: "put"; readonly request: PutRequest }
  | { readonly type: "deleteRange"; readonly request: DeleteRangeRequest }
  | { readonly type: "txn"; readonly request: TxnRequest };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface CompactRequest {
  readonly revision: number;
  /** The server answers only once the compaction is physically done. */
  readonly physical: boolean;
}

/** A lease with a fixed id (the proposer picks one when the client did not) and TTL (already raised to the minimum). */
export interface LeaseGrantRequest {
  readonly id: bigint;
  readonly ttlSeconds: number;
}

export interface LeaseIdRequest {
  readonly id: bigint;
}

export interface LeaseRevokeRequest {
  readonly id: bigint;
  /**
   * 0 for a client's revoke. For a revoke the leader's clock decided: the
   * leader's applied index when it saw the lease run out. A lease renewed
   * by a later entry was kept alive in time and survives the revoke.
   */
  readonly expiryIndex: number;
}

export interface LeaseCheckpoint {
  readonly id: bigint;
  /** Seconds the leader's clock had left on the lease. */
  readonly remainingSeconds: number;
}

/**
 * The leader's view of remaining TTLs, so a new leader (or a restarted
 * cluster) continues from them instead of from the full TTL. `asOfIndex` is
 * the leader's applied index when it measured: a lease renewed after that
 * ignores its (older) checkpoint.
 */
export interface LeaseCheckpointRequest {
  readonly asOfIndex: number;
  readonly checkpoints: readonly LeaseCheckpoint[];
}

export type KvCommand =
  | { readonly type: "put"; readonly request: PutRequest }
  | { readonly type: "deleteRange"; readonly request: DeleteRangeRequest }
  | { readonly type: "txn"; readonly request: TxnRequest }
  | { readonly type: "compact"; readonly request: CompactRequest }
  | { readonly type: "leaseGrant"; readonly request: LeaseGrantRequest }
  /** Deletes the lease and every key attached to it, in one revision. */
  | { readonly type: "leaseRevoke"; readonly request: LeaseRevokeRequest }
  /** A keep-alive: the lease starts its full TTL again (replicated, so any member can take one). */
  | { readonly type: "leaseRenew"; readonly request: LeaseIdRequest }
  | { readonly type: "leaseCheckpoint"; readonly request: LeaseCheckpointRequest };

/** Requests with every optional field defaulted, for callers and tests. */
export function rangeRequest(key: Uint8Array, fields: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key, rangeEnd: new Uint8Array(0), limit: 0, revision: 0, sortOrder: SortOrder.None, sortTarget: SortTarget.Key,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
    ...fields,
  };
}
export function putRequest(key: Uint8Array, value: Uint8Array, fields: Partial<PutRequest> = {}): PutRequest {
  return { key, value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...fields };
}
export function deleteRangeRequest(key: Uint8Array, fields: Partial<DeleteRangeRequest> = {}): DeleteRangeRequest {
  return { key, rangeEnd: new Uint8Array(0), prevKv: false, ...fields };
}
export function compare(key: Uint8Array, target: CompareTarget, result: CompareResult, operand: Uint8Array | number | bigint, rangeEnd: Uint8Array = new Uint8Array(0)): Compare {
  return {
    key, rangeEnd, target, result,
    value: operand instanceof Uint8Array ? operand : new Uint8Array(0),
    number: typeof operand === "number" ? operand : 0,
    lease: typeof operand === "bigint" ? operand : 0n,
  };
}

/** Version byte of the encoding; decode refuses others. */
export const COMMAND_CODEC_VERSION = 1;
/** Nesting depth of Txn inside Txn that decode accepts (bounds recursion on hostile input). */
export const TXN_NESTING_MAX = 16;

const CommandTag = { put: 1, deleteRange: 2, txn: 3, compact: 4, range: 5, leaseGrant: 6, leaseRevoke: 7, leaseRenew: 8, leaseCheckpoint: 9 } as const;
/** Checkpoints one entry carries at most (etcd batches 1000 per proposal too). */
export const LEASE_CHECKPOINTS_PER_ENTRY_MAX = 1000;

class Writer {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + count) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }
  u8(value: number): void {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }
  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }
  u64(value: number): void {
    this.reserve(8);
    writeUint64(this.view, this.length, value);
    this.length += 8;
  }
  i64(value: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, value);
    this.length += 8;
  }
  bytesField(value: Uint8Array): void {
    this.u32(value.length);
    this.reserve(value.length);
    this.bytes.set(value, this.length);
    this.length += value.length;
  }
  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

class Reader {
  private readonly view: DataView;
  at = 0;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(reason: string): never {
    throw new CommandDecodeError(this.at, reason);
  }
  private need(count: number, what: string): void {
    if (this.at + count > this.bytes.length) this.fail(`truncated ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.at++];
  }
  bool(what: string): boolean {
    const value = this.u8(what);
    if (value > 1) this.fail(`${what} must be 0 or 1, got ${value}`);
    return value === 1;
  }
  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.at);
    this.at += 4;
    return value;
  }
  u64(what: string): number {
    this.need(8, what);
    const value = readUint64(this.view, this.at);
    if (value < 0) this.fail(`${what} exceeds 2^53`);
    this.at += 8;
    return value;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const value = this.view.getBigInt64(this.at);
    this.at += 8;
    return value;
  }
  bytesField(what: string): Uint8Array {
    const length = this.u32(`${what} length`);
    this.need(length, what);
    const value = this.bytes.slice(this.at, this.at + length);
    this.at += length;
    return value;
  }
  enumeration<T extends number>(what: string, count: number): T {
    const value = this.u8(what);
    if (value >= count) this.fail(`unknown ${what} ${value}`);
    return value as T;
  }
  get remaining(): number {
    return this.bytes.length - this.at;
  }
}

export function encodeCommand(command: KvCommand): Uint8Array {
  const writer = new Writer();
  writer.u8(COMMAND_CODEC_VERSION);
  writer.u8(CommandTag[command.type]);
  switch (command.type) {
    case "put": writePut(writer, command.request); break;
    case "deleteRange": writeDeleteRange(writer, command.request); break;
    case "txn": writeTxn(writer, command.request); break;
    case "compact":
      writer.u64(command.request.revision);
      writer.u8(command.request.physical ? 1 : 0);
      break;
    case "leaseGrant":
      writer.i64(command.request.id);
      writer.u64(command.request.ttlSeconds);
      break;
    case "leaseRevoke":
      writer.i64(command.request.id);
      writer.u64(command.request.expiryIndex);
      break;
    case "leaseRenew":
      writer.i64(command.request.id);
      break;
    case "leaseCheckpoint":
      writer.u64(command.request.asOfIndex);
      writer.u32(command.request.checkpoints.length);
      for (const checkpoint of command.request.checkpoints) {
        writer.i64(checkpoint.id);
        writer.u64(checkpoint.remainingSeconds);
      }
      break;
  }
  return writer.finish();
}

export function decodeCommand(bytes: Uint8Array): KvCommand {
  const reader = new Reader(bytes);
  const version = reader.u8("codec version");
  if (version !== COMMAND_CODEC_VERSION) {
    reader.at = 0;
    reader.fail(`unsupported codec version ${version} (this build reads ${COMMAND_CODEC_VERSION})`);
  }
  const tag = reader.u8("command type");
  let command: KvCommand;
  switch (tag) {
    case CommandTag.put: command = { type: "put", request: readPut(reader) }; break;
    case CommandTag.deleteRange: command = { type: "deleteRange", request: readDeleteRange(reader) }; break;
    case CommandTag.txn: command = { type: "txn", request: readTxn(reader, 1) }; break;
    case CommandTag.compact: {
      const revision = reader.u64("compact revision");
      command = { type: "compact", request: { revision, physical: reader.bool("physical") } };
      break;
    }
    case CommandTag.leaseGrant: {
      const id = reader.i64("lease id");
      command = { type: "leaseGrant", request: { id, ttlSeconds: reader.u64("lease ttl") } };
      break;
    }
    case CommandTag.leaseRevoke: {
      const id = reader.i64("lease id");
      command = { type: "leaseRevoke", request: { id, expiryIndex: reader.u64("expiry index") } };
      break;
    }
    case CommandTag.leaseRenew: command = { type: "leaseRenew", request: { id: reader.i64("lease id") } }; break;
    case CommandTag.leaseCheckpoint: command = { type: "leaseCheckpoint", request: readCheckpoints(reader) }; break;
    default:
      reader.at -= 1;
      return reader.fail(`unknown command type ${tag}`);
  }
  if (reader.remaining !== 0) reader.fail(`${reader.remaining} trailing bytes`);
  return command;
}

function readCheckpoints(reader: Reader): LeaseCheckpointRequest {
  const asOfIndex = reader.u64("checkpoint index");
  const count = reader.u32("checkpoint count");
  if (count > LEASE_CHECKPOINTS_PER_ENTRY_MAX) reader.fail(`${count} lease checkpoints in one entry (at most ${LEASE_CHECKPOINTS_PER_ENTRY_MAX})`);
  const checkpoints: LeaseCheckpoint[] = [];
  for (let i = 0; i < count; i++) {
    const id = reader.i64("checkpoint lease id");
    checkpoints.push({ id, remainingSeconds: reader.u64("checkpoint remaining ttl") });
  }
  return { asOfIndex, checkpoints };
}

function writeRange(writer: Writer, request: RangeRequest): void {
  writer.bytesField(request.key);
  writer.bytesField(request.rangeEnd);
  writer.u64(request.limit);
  writer.u64(request.revision);
  writer.u8(request.sortOrder);
  writer.u8(request.sortTarget);
  writer.u8((request.keysOnly ? 1 : 0) | (request.countOnly ? 2 : 0));
  writer.u64(request.minModRevision);
  writer.u64(request.maxModRevision);
  writer.u64(request.minCreateRevision);
  writer.u64(request.maxCreateRevision);
}

function readRange(reader: Reader): RangeRequest {
  const key = reader.bytesField("range key");
  const rangeEnd = reader.bytesField("range end");
  const limit = reader.u64("limit");
  const revision = reader.u64("revision");
  const sortOrder = reader.enumeration<SortOrder>("sort order", 3);
  const sortTarget = reader.enumeration<SortTarget>("sort target", 5);
  const flags = reader.u8("range flags");
  if (flags > 3) reader.fail(`unknown range flags ${flags}`);
  return {
    key, rangeEnd, limit, revision, sortOrder, sortTarget, keysOnly: (flags & 1) !== 0, countOnly: (flags & 2) !== 0,
    minModRevision: reader.u64("min mod revision"), maxModRevision: reader.u64("max mod revision"),
    minCreateRevision: reader.u64("min create revision"), maxCreateRevision: reader.u64("max create revision"),
  };
}

function writePut(writer: Writer, request: PutRequest): void {
  writer.bytesField(request.key);
  writer.bytesField(request.value);
  writer.i64(request.lease);
  writer.u8((request.prevKv ? 1 : 0) | (request.ignoreValue ? 2 : 0) | (request.ignoreLease ? 4 : 0));
}

function readPut(reader: Reader): PutRequest {
  const key = reader.bytesField("put key");
  const value = reader.bytesField("put value");
  const lease = reader.i64("lease");
  const flags = reader.u8("put flags");
  if (flags > 7) reader.fail(`unknown put flags ${flags}`);
  return { key, value, lease, prevKv: (flags & 1) !== 0, ignoreValue: (flags & 2) !== 0, ignoreLease: (flags & 4) !== 0 };
}

function writeDeleteRange(writer: Writer, request: DeleteRangeRequest): void {
  writer.bytesField(request.key);
  writer.bytesField(request.rangeEnd);
  writer.u8(request.prevKv ? 1 : 0);
}

function readDeleteRange(reader: Reader): DeleteRangeRequest {
  return { key: reader.bytesField("delete key"), rangeEnd: reader.bytesField("delete range end"), prevKv: reader.bool("prev kv") };
}

function writeOps(writer: Writer, ops: readonly RequestOp[]): void {
  writer.u32(ops.length);
  for (const op of ops) {
    writer.u8(CommandTag[op.type]);
    switch (op.type) {
      case "range": writeRange(writer, op.request); break;
      case "put": writePut(writer, op.request); break;
      case "deleteRange": writeDeleteRange(writer, op.request); break;
      case "txn": writeTxn(writer, op.request); break;
    }
  }
}

function readOps(reader: Reader, depth: number): RequestOp[] {
  const count = reader.u32("operation count");
  // Every operation takes at least one byte: a count larger than what is left is garbage.
  if (count > reader.remaining) reader.fail(`operation count ${count} exceeds the remaining bytes`);
  const ops: RequestOp[] = [];
  for (let i = 0; i < count; i++) {
    const tag = reader.u8("operation type");
    switch (tag) {
      case CommandTag.range: ops.push({ type: "range", request: readRange(reader) }); break;
      case CommandTag.put: ops.push({ type: "put", request: readPut(reader) }); break;
      case CommandTag.deleteRange: ops.push({ type: "deleteRange", request: readDeleteRange(reader) }); break;
      case CommandTag.txn: ops.push({ type: "txn", request: readTxn(reader, depth + 1) }); break;
      default:
        reader.at -= 1;
        reader.fail(`unknown operation type ${tag}`);
    }
  }
  return ops;
}

function writeTxn(writer: Writer, request: TxnRequest): void {
  writer.u32(request.compare.length);
  for (const item of request.compare) {
    writer.u8(item.result);
    writer.u8(item.target);
    writer.bytesField(item.key);
    writer.bytesField(item.rangeEnd);
    writer.bytesField(item.value);
    writer.u64(item.number);
    writer.i64(item.lease);
  }
  writeOps(writer, request.success);
  writeOps(writer, request.failure);
}

function readTxn(reader: Reader, depth: number): TxnRequest {
  if (depth > TXN_NESTING_MAX) reader.fail(`txn nested deeper than ${TXN_NESTING_MAX}`);
  const count = reader.u32("compare count");
  if (count > reader.remaining) reader.fail(`compare count ${count} exceeds the remaining bytes`);
  const compares: Compare[] = [];
  for (let i = 0; i < count; i++) {
    const result = reader.enumeration<CompareResult>("compare result", 4);
    const target = reader.enumeration<CompareTarget>("compare target", 5);
    compares.push({
      result, target, key: reader.bytesField("compare key"), rangeEnd: reader.bytesField("compare range end"),
      value: reader.bytesField("compare value"), number: reader.u64("compare operand"), lease: reader.i64("compare lease"),
    });
  }
  const success = readOps(reader, depth);
  const failure = readOps(reader, depth);
  return { compare: compares, success, failure };
}
