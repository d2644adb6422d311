/**
 * Errors of the MVCC state machine. Messages are etcd's exact strings where
 * etcd has one, because clients match on the text. `grpcCode` is the status
 * the API layer answers with and `grpcMessage` the text etcd's server puts on
 * the wire (etcd prefixes some mvcc errors with "etcdserver: " there).
 */
export type GrpcCodeName = "InvalidArgument" | "OutOfRange" | "NotFound" | "FailedPrecondition" | "ResourceExhausted";

export abstract class KvError extends Error {
  abstract readonly grpcCode: GrpcCodeName;
  get grpcMessage(): string {
    return this.message;
  }
}

export class CompactedError extends KvError {
  override name = "CompactedError";
  readonly grpcCode = "OutOfRange";
  constructor(options?: ErrorOptions) {
    super("mvcc: required revision has been compacted", options);
  }
  override get grpcMessage(): string {
    return `etcdserver: ${this.message}`;
  }
}

export class FutureRevisionError extends KvError {
  override name = "FutureRevisionError";
  readonly grpcCode = "OutOfRange";
  constructor(options?: ErrorOptions) {
    super("mvcc: required revision is a future revision", options);
  }
  override get grpcMessage(): string {
    return `etcdserver: ${this.message}`;
  }
}

export class DuplicateKeyError extends KvError {
  override name = "DuplicateKeyError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: duplicate key given in txn request");
  }
}

export class LeaseNotFoundError extends KvError {
  override name = "LeaseNotFoundError";
  readonly grpcCode = "NotFound";
  constructor(readonly lease: bigint) {
    super("etcdserver: requested lease not found");
  }
}

export class LeaseExistsError extends KvError {
  override name = "LeaseExistsError";
  readonly grpcCode = "FailedPrecondition";
  constructor(readonly lease: bigint) {
    super("etcdserver: lease already exists");
  }
}

export class LeaseTtlTooLargeError extends KvError {
  override name = "LeaseTtlTooLargeError";
  readonly grpcCode = "OutOfRange";
  constructor(readonly ttlSeconds: number) {
    super("etcdserver: too large lease TTL");
  }
}

/** Put with ignore_value or ignore_lease on a key that does not exist. */
export class KeyNotFoundError extends KvError {
  override name = "KeyNotFoundError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: key not found");
  }
}

export class EmptyKeyError extends KvError {
  override name = "EmptyKeyError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: key is not provided");
  }
}

export class ValueProvidedError extends KvError {
  override name = "ValueProvidedError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: value is provided");
  }
}

export class LeaseProvidedError extends KvError {
  override name = "LeaseProvidedError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: lease is provided");
  }
}

export class TooManyOperationsError extends KvError {
  override name = "TooManyOperationsError";
  readonly grpcCode = "InvalidArgument";
  constructor() {
    super("etcdserver: too many operations in txn request");
  }
}

/**
 * The ranges of a Txn would answer more than limits.txnRangeResponseBytesMax.
 * Not an etcd error (etcd builds any answer whole and may run out of memory);
 * refused before the Txn runs, the same way on every member, so nothing of
 * the Txn is applied.
 */
export class TxnResponseTooLargeError extends KvError {
  override name = "TxnResponseTooLargeError";
  readonly grpcCode = "ResourceExhausted";
  constructor(readonly responseBytes: number, readonly responseBytesMax: number) {
    super(`cairn: txn range responses too large (at least ${responseBytes} bytes, limit ${responseBytesMax}); nothing was applied; narrow the ranges, set a limit, or ask for keys_only or count_only`);
  }
}

/**
 * A key longer than the store can index. Not an etcd error: etcd accepts keys
 * up to the request size, but LMDB keys are capped (about 1.9 KiB), so Cairn
 * refuses longer keys, the same way on every replica.
 */
export class KeyTooLongError extends KvError {
  override name = "KeyTooLongError";
  readonly grpcCode = "InvalidArgument";
  constructor(readonly keyBytes: number, readonly keyBytesMax: number) {
    super(`cairn: key is too long (${keyBytes} encoded bytes, at most ${keyBytesMax})`);
  }
}

/** Garbage where a KvCommand was expected: names the byte offset. */
export class CommandDecodeError extends KvError {
  override name = "CommandDecodeError";
  readonly grpcCode = "InvalidArgument";
  constructor(readonly offset: number, reason: string) {
    super(`cairn: invalid kv command at byte ${offset}: ${reason}`);
  }
}

/** A streamed read (range or snapshot) that outlived the state it was reading: a snapshot install replaced it. */
export class StaleReadError extends KvError {
  override name = "StaleReadError";
  readonly grpcCode = "FailedPrecondition";
  constructor() {
    super("cairn: the state was replaced by a snapshot install while this read was open; retry the read");
  }
}

/** A store whose layout was written by a newer Cairn. Nothing was changed. */
export class NewerFormatError extends Error {
  override name = "NewerFormatError";
  constructor(readonly location: string, readonly found: number, readonly supported: number) {
    super(`${location}: kv store format version ${found} is newer than this build supports (${supported}); refusing to open it, nothing was changed`);
  }
}

/** A damaged, truncated or foreign snapshot stream. `chunk` is the sequence number of the chunk at fault. */
export class SnapshotCorruptError extends Error {
  override name = "SnapshotCorruptError";
  constructor(readonly chunk: number, reason: string, options?: ErrorOptions) {
    super(`snapshot chunk ${chunk}: ${reason}`, options);
  }
}

export class SnapshotFormatError extends Error {
  override name = "SnapshotFormatError";
  constructor(readonly found: number, readonly supported: number) {
    super(`snapshot format version ${found} is newer than this build supports (${supported})`);
  }
}
