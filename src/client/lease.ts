/**
 * etcd's Lease service for callers: grant, revoke, time-to-live, list, and
 * keep-alives. Lease ids are bigint end to end.
 *
 * A keep-alive is sent on its own short LeaseKeepAlive stream (one request,
 * then the client half-closes), so it needs no long-lived bidirectional
 * stream and is retried on another endpoint like a read: renewing twice is
 * harmless. keepAlive() runs the loop etcd's clients run, one renewal every
 * third of the TTL, until its AbortSignal aborts.
 */
import {
  GrpcStatus, type LeaseGrantResponse, type LeaseLeasesResponse, type LeaseRevokeResponse, type LeaseTimeToLiveResponse,
} from "../api/mod.js";
import type { Channel } from "./channel.js";
import type { DispatchOptions, Dispatcher } from "./dispatcher.js";
import { EtcdClientError, InvalidRequestError } from "./errors.js";
import { leaseMethods } from "./methods.js";

/** The lease is gone (expired or revoked): a keep-alive answered TTL 0. */
export class LeaseExpiredError extends Error {
  override name = "LeaseExpiredError";
  constructor(readonly id: bigint) {
    super(`lease ${id.toString(16)} has expired or was revoked`);
  }
}

/** No keep-alive got through for a whole TTL: the lease may have expired on the server already. */
export class LeaseKeepAliveLostError extends Error {
  override name = "LeaseKeepAliveLostError";
  constructor(readonly id: bigint, options?: ErrorOptions) {
    super(`lease ${id.toString(16)}: no keep-alive succeeded for a whole TTL; assume it is lost`, options);
  }
}

export interface KeepAliveOptions {
  /** Stops the loop; keepAlive() then resolves. */
  readonly signal?: AbortSignal;
  /** Called after every successful renewal with the TTL the server answered. */
  readonly onRenewed?: (ttlSeconds: number) => void;
}

function checkLeaseId(id: bigint): bigint {
  if (typeof id !== "bigint" || id === 0n || id < -(1n << 63n) || id >= 1n << 63n) {
    throw new InvalidRequestError(`a lease id must be a non-zero signed 64-bit integer, got ${String(id)}`);
  }
  return id;
}

function sleep(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, milliseconds);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export class LeaseClient {
  constructor(private readonly dispatcher: Dispatcher) {}

  /** Grants a lease of `ttlSeconds` (the server raises it to its minimum), with the given id or one the server picks. */
  async grant(ttlSeconds: number, options: { id?: bigint } & DispatchOptions = {}): Promise<LeaseGrantResponse> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new InvalidRequestError(`a lease TTL must be a positive whole number of seconds, got ${ttlSeconds}`);
    const id = options.id === undefined ? 0n : checkLeaseId(options.id);
    return this.dispatcher.unary(leaseMethods.grant, { TTL: ttlSeconds, ID: id }, "write", "leader", options);
  }

  /** Revokes the lease and deletes every key attached to it. */
  async revoke(id: bigint, options: DispatchOptions = {}): Promise<LeaseRevokeResponse> {
    return this.dispatcher.unary(leaseMethods.revoke, { ID: checkLeaseId(id) }, "write", "leader", options);
  }

  /** Remaining and granted TTL (TTL -1 when the lease does not exist), and the attached keys when asked. */
  async timeToLive(id: bigint, options: { keys?: boolean } & DispatchOptions = {}): Promise<LeaseTimeToLiveResponse> {
    return this.dispatcher.unary(leaseMethods.timeToLive, { ID: checkLeaseId(id), keys: options.keys ?? false }, "read", "leader", options);
  }

  async leases(options: DispatchOptions = {}): Promise<LeaseLeasesResponse> {
    return this.dispatcher.unary(leaseMethods.leases, {}, "read", "leader", options);
  }

  /** One renewal; resolves with the TTL the lease starts again from. Throws LeaseExpiredError when it is gone. */
  async keepAliveOnce(id: bigint, options: DispatchOptions = {}): Promise<number> {
    checkLeaseId(id);
    const leader = await this.dispatcher.leaderChannel(options);
    const channels: Channel[] = [...(leader ? [leader] : []), ...this.dispatcher.channels.filter((channel) => channel !== leader)];
    let lastError: unknown;
    for (const channel of channels) {
      try {
        const stream = this.dispatcher.serverStreamAt(channel, leaseMethods.keepAlive, { ID: id }, { ...options, timeoutMs: options.timeoutMs ?? 5000 });
        for await (const response of stream) {
          await stream.return();
          if (response.TTL <= 0) throw new LeaseExpiredError(id);
          return response.TTL;
        }
        lastError = new EtcdClientError(GrpcStatus.unavailable, "the keep-alive stream ended without an answer", channel.endpoint.address, "Lease/LeaseKeepAlive");
      } catch (error) {
        if (error instanceof LeaseExpiredError || options.signal?.aborted) throw error;
        const reportable = this.dispatcher.reportable(error, "read", "Lease/LeaseKeepAlive");
        // Only failures another endpoint might not have are worth another try.
        if (!(reportable instanceof EtcdClientError) || (reportable.code !== GrpcStatus.unavailable && reportable.code !== GrpcStatus.deadlineExceeded)) throw reportable;
        lastError = reportable;
      }
    }
    throw lastError;
  }

  /**
   * Keeps the lease alive until `signal` aborts (then resolves). Rejects with
   * LeaseExpiredError when the server says the lease is gone, and with
   * LeaseKeepAliveLostError when no renewal got through for a whole TTL.
   */
  async keepAlive(id: bigint, ttlSeconds: number, options: KeepAliveOptions = {}): Promise<void> {
    checkLeaseId(id);
    const { signal } = options;
    let ttlMs = ttlSeconds * 1000;
    let renewedAt = Date.now();
    let lastError: unknown;
    while (!signal?.aborted) {
      try {
        const ttl = await this.keepAliveOnce(id, { signal, timeoutMs: Math.max(1000, ttlMs / 3) });
        ttlMs = ttl * 1000;
        renewedAt = Date.now();
        options.onRenewed?.(ttl);
        await sleep(ttlMs / 3, signal);
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof LeaseExpiredError) throw error;
        lastError = error;
        if (Date.now() - renewedAt >= ttlMs) throw new LeaseKeepAliveLostError(id, { cause: lastError });
        await sleep(Math.min(500, ttlMs / 10), signal);
      }
    }
  }
}
