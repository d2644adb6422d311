/**
 * What a client call can fail with. Four outcomes a caller must tell apart:
 *
 * - EtcdClientError: the cluster answered with a gRPC status (or no endpoint
 *   answered in time, or at all). The call did not take effect, except where
 *   the write rules below say "indeterminate".
 * - IndeterminateError: a write (Put, DeleteRange, Txn, Compact, a membership
 *   change) may or may not have been applied: it was sent and then the
 *   connection was lost, the deadline passed, or the server said its
 *   proposal timed out. The client never re-sends such a write on its own:
 *   doing so can apply it twice or, with a compare, lose an update (Jepsen's
 *   finding in etcd's Java client). The caller decides, typically by reading
 *   the key back.
 * - ClientClosedError: close() was called.
 * - the caller's own AbortSignal reason, for a read the caller cancelled.
 */
import { etcdErrorKindOf, grpcStatusName, type EtcdErrorKind, type GrpcStatusCode } from "../api/mod.js";

export class EtcdClientError extends Error {
  override name = "EtcdClientError";
  /** etcd's error, when the status message is one of etcd's (e.g. "compacted"). */
  readonly kind: EtcdErrorKind | undefined;

  constructor(
    readonly code: GrpcStatusCode,
    /** The status message exactly as the server sent it. */
    readonly details: string,
    /** "host:port" of the endpoint that answered, when one did. */
    readonly endpoint: string | undefined,
    /** The RPC, e.g. "KV/Put". */
    readonly method: string,
    options?: ErrorOptions,
  ) {
    super(`${method}${endpoint === undefined ? "" : ` at ${endpoint}`}: ${grpcStatusName(code)}: ${details}`, options);
    this.kind = etcdErrorKindOf(details);
  }
}

/** A write whose outcome is unknown: it may have been applied, or not. Never retried by the client. */
export class IndeterminateError extends Error {
  override name = "IndeterminateError";

  constructor(
    readonly method: string,
    readonly endpoint: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${method} at ${endpoint}: outcome unknown, the write may or may not have been applied (${reason})`, options);
  }
}

export class ClientClosedError extends Error {
  override name = "ClientClosedError";
  constructor() {
    super("the client is closed");
  }
}

/** An endpoint that is not host:port, http://host:port or https://host:port. */
export class InvalidEndpointError extends Error {
  override name = "InvalidEndpointError";
  constructor(readonly endpoint: string, reason: string) {
    super(`invalid endpoint ${JSON.stringify(endpoint)}: ${reason}`);
  }
}

/**
 * The connection failed under a call. `requestSent` says whether any byte of
 * the request may have reached the server: false when the connection was
 * never established or the server refused the stream unprocessed (HTTP/2
 * REFUSED_STREAM, or a GOAWAY before it), true otherwise. Reported inside an
 * EtcdClientError (UNAVAILABLE) or an IndeterminateError as their `cause`.
 */
export class TransportError extends Error {
  override name = "TransportError";
  constructor(
    readonly endpoint: string,
    readonly requestSent: boolean,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${endpoint}: ${message}`, options);
  }
}

/** A call stopped by its deadline or by the caller's signal; `requestSent` as in TransportError. */
export class CallAbortedError extends Error {
  override name = "CallAbortedError";
  constructor(
    readonly endpoint: string,
    readonly requestSent: boolean,
    /** The signal's reason. */
    readonly reason: unknown,
    /** True when the call's own deadline fired (rather than the caller's signal). */
    readonly deadline: boolean,
  ) {
    super(`${endpoint}: ${deadline ? "deadline exceeded" : "aborted"}`, { cause: reason });
  }
}

/** A request the client refuses before sending (a negative limit, a revision that is not an integer). */
export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
}
