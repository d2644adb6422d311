/**
 * Sends each call to the right endpoint and decides about retries.
 *
 * Routing: writes and linearizable reads go to the leader, serializable reads
 * to the endpoint that last answered (any member can serve them). The leader
 * is found with Maintenance.Status on every endpoint at once: each answer
 * names its own member id (header) and the leader it follows; the claim with
 * the highest Raft term wins. When the leader is not among the endpoints (or
 * nobody knows one), calls go to any endpoint and the server forwards. The
 * leader is forgotten when a call to it fails in a way that suggests it no
 * longer leads, or when any answer shows a newer Raft term than the one the
 * leader was found in.
 *
 * Retries follow retry-policy.ts, within a budget of attempts and within the
 * call's deadline, with a short backoff each time every endpoint has been
 * tried once.
 */
import { setMaxListeners } from "node:events";
import type { EmptyRequest, ResponseHeader, StatusResponse } from "../api/mod.js";
import { GrpcStatus } from "../api/mod.js";
import { assert } from "../lib/assert.js";
import { Channel, type BidiCall, type ChannelOptions, type MethodDescriptor, type ResponseStream } from "./channel.js";
import type { Endpoint } from "./endpoint.js";
import { CallAbortedError, ClientClosedError, EtcdClientError, InvalidEndpointError, TransportError } from "./errors.js";
import { clusterAndMaintenanceMethods } from "./methods.js";
import { judgeFailure, type CallKind } from "./retry-policy.js";

/** Attempts per endpoint in one call, and a cap on attempts whatever the endpoint count. */
export const ATTEMPTS_PER_ENDPOINT_MAX = 2;
export const ATTEMPTS_MIN = 3;
export const ATTEMPTS_MAX = 16;
/** Backoff before each new round over the endpoints: base doubled per round, capped, with jitter. */
export const RETRY_BACKOFF_MS_BASE = 25;
export const RETRY_BACKOFF_MS_MAX = 500;
/** Bound on one leader discovery (the Status calls run in parallel). */
export const LEADER_DISCOVERY_TIMEOUT_MS_MAX = 2000;
/** After a discovery found no leader among the endpoints, calls go anywhere for this long before looking again. */
export const LEADER_RECHECK_INTERVAL_MS = 1000;

export type Route = "leader" | "any";

export interface DispatchOptions {
  /** Aborts the call; a read then fails with the signal's reason, a sent write with IndeterminateError. */
  readonly signal?: AbortSignal;
  /** Deadline for the whole call, retries included. Default: the client's command timeout; 0 or Infinity for none. */
  readonly timeoutMs?: number;
}

export interface DispatcherOptions extends ChannelOptions {
  readonly commandTimeoutMs: number;
  /** Attempts per call before giving up; default ATTEMPTS_PER_ENDPOINT_MAX per endpoint, at least ATTEMPTS_MIN, at most ATTEMPTS_MAX. */
  readonly attemptsMax?: number;
}

function connectionTrouble(error: unknown): boolean {
  if (error instanceof TransportError) return true;
  if (error instanceof CallAbortedError) return error.deadline;
  return error instanceof EtcdClientError && (error.code === GrpcStatus.unavailable || error.code === GrpcStatus.deadlineExceeded);
}

export class Dispatcher {
  readonly channels: readonly Channel[];
  private readonly memberIds = new Map<Channel, bigint>();
  private readonly attemptsMax: number;
  private leader: Channel | undefined;
  private leaderTerm = 0;
  private leaderCheckedAtMs = Number.NEGATIVE_INFINITY;
  private discovery: Promise<Channel | undefined> | undefined;
  /** Index of the endpoint that answered last: where serializable reads go first. */
  private preferred = 0;
  private readonly lifetime = new AbortController();

  constructor(endpoints: readonly Endpoint[], private readonly options: DispatcherOptions) {
    assert(endpoints.length > 0, "a dispatcher needs at least one endpoint");
    this.channels = endpoints.map((endpoint) => new Channel(endpoint, options));
    // Each call in flight without a signal of its own listens on the lifetime signal (and stops when it ends), so
    // many concurrent calls are many listeners, not a leak: without this Node warns at eleven.
    setMaxListeners(0, this.lifetime.signal);
    const perEndpoint = ATTEMPTS_PER_ENDPOINT_MAX * endpoints.length;
    this.attemptsMax = Math.min(ATTEMPTS_MAX, Math.max(1, options.attemptsMax ?? Math.max(ATTEMPTS_MIN, perEndpoint)));
  }

  get closed(): boolean {
    return this.lifetime.signal.aborted;
  }

  /** The channel of an endpoint named "host:port" or by URL. */
  channelOf(endpoint: string): Channel {
    const channel = this.channels.find((item) => item.endpoint.address === endpoint || item.endpoint.url === endpoint);
    if (!channel) throw new InvalidEndpointError(endpoint, "not one of the client's endpoints");
    return channel;
  }

  /** The member id an endpoint answered with last, if it answered. */
  memberIdOf(channel: Channel): bigint | undefined {
    return this.memberIds.get(channel);
  }

  /** Calls a unary RPC with routing and retries. */
  async unary<Request, Response extends { header?: ResponseHeader }>(
    method: MethodDescriptor<Request, Response>, request: Request, kind: CallKind, route: Route, options: DispatchOptions = {},
  ): Promise<Response> {
    if (this.closed) throw new ClientClosedError();
    const signal = this.callSignal(options.signal);
    const deadlineAtMs = this.deadlineOf(options.timeoutMs);
    const tried = new Set<Channel>();
    let round = 0;
    let lastError: unknown;
    for (let attempt = 0; attempt < this.attemptsMax; attempt++) {
      if (tried.size === this.channels.length) {
        tried.clear();
        round++;
        await this.backoff(round, signal, deadlineAtMs, method.name, lastError);
      }
      const channel = await this.pick(route, tried, signal, deadlineAtMs);
      tried.add(channel);
      try {
        const response = await channel.unary(method, request, signal, deadlineAtMs);
        this.learn(channel, response.header);
        this.preferred = this.channels.indexOf(channel);
        return response;
      } catch (error) {
        if (this.closed) throw new ClientClosedError();
        const verdict = judgeFailure(error, kind, method.name);
        if (verdict.action === "fail") {
          // A lost connection or a timeout says nothing about this write's fate, but much about the endpoint: the next call looks again.
          if (channel === this.leader && connectionTrouble(error)) this.forgetLeader();
          throw verdict.error;
        }
        if (verdict.leaderSuspect && channel === this.leader) this.forgetLeader();
        if (verdict.endpointSuspect && this.channels[this.preferred] === channel) this.preferred = (this.preferred + 1) % this.channels.length;
        lastError = error;
      }
    }
    if (lastError instanceof EtcdClientError) throw lastError;
    throw new EtcdClientError(GrpcStatus.unavailable, `no endpoint answered in ${this.attemptsMax} attempts: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
      undefined, method.name, { cause: lastError });
  }

  /** Calls a unary RPC on one given endpoint, once: for per-endpoint answers such as Status. */
  async unaryAt<Request, Response extends { header?: ResponseHeader }>(
    channel: Channel, method: MethodDescriptor<Request, Response>, request: Request, kind: CallKind, options: DispatchOptions = {},
  ): Promise<Response> {
    if (this.closed) throw new ClientClosedError();
    try {
      const response = await channel.unary(method, request, this.callSignal(options.signal), this.deadlineOf(options.timeoutMs));
      this.learn(channel, response.header);
      return response;
    } catch (error) {
      throw this.reportable(error, kind, method.name);
    }
  }

  /** The error a caller sees for a failure that will not be retried: retryable transport failures become UNAVAILABLE. */
  reportable(error: unknown, kind: CallKind, method: string): unknown {
    if (this.closed) return new ClientClosedError();
    const verdict = judgeFailure(error, kind, method);
    if (verdict.action === "fail") return verdict.error;
    if (error instanceof EtcdClientError) return error;
    const endpoint = error instanceof TransportError ? error.endpoint : undefined;
    return new EtcdClientError(GrpcStatus.unavailable, error instanceof Error ? error.message : String(error), endpoint, method, { cause: error });
  }

  /** Opens a server stream on one endpoint (no retries: a stream that started cannot be resumed elsewhere). */
  serverStreamAt<Request, Response>(channel: Channel, method: MethodDescriptor<Request, Response>, request: Request, options: DispatchOptions = {}): ResponseStream<Response> {
    if (this.closed) throw new ClientClosedError();
    const timeoutMs = options.timeoutMs;
    const deadlineAtMs = timeoutMs === undefined || timeoutMs === 0 || !Number.isFinite(timeoutMs) ? undefined : Date.now() + timeoutMs;
    return channel.serverStream(method, request, this.callSignal(options.signal), deadlineAtMs);
  }

  /** Opens a bidirectional stream on one endpoint (no retries here: the caller knows how to resume it). */
  bidiStreamAt<Request, Response>(channel: Channel, method: MethodDescriptor<Request, Response>, firstRequest: Request, options: DispatchOptions = {}): BidiCall<Request, Response> {
    if (this.closed) throw new ClientClosedError();
    return channel.bidiStream(method, firstRequest, this.callSignal(options.signal));
  }

  /** The endpoint for a call that should reach the leader, or any endpoint when the leader is not among them. */
  async leaderChannel(options: DispatchOptions = {}): Promise<Channel | undefined> {
    return this.discoverLeader(this.callSignal(options.signal), this.deadlineOf(options.timeoutMs));
  }

  close(): void {
    if (this.closed) return;
    this.lifetime.abort(new ClientClosedError());
    for (const channel of this.channels) channel.close();
  }

  private callSignal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined ? this.lifetime.signal : AbortSignal.any([signal, this.lifetime.signal]);
  }

  private deadlineOf(timeoutMs: number | undefined): number | undefined {
    const budget = timeoutMs ?? this.options.commandTimeoutMs;
    if (budget === 0 || !Number.isFinite(budget)) return undefined;
    assert(budget > 0, () => `a timeout must be positive, got ${budget}`);
    return Date.now() + budget;
  }

  /** Waits before another round over the endpoints; never past the deadline (then the call fails with DEADLINE_EXCEEDED). */
  private async backoff(round: number, signal: AbortSignal, deadlineAtMs: number | undefined, method: string, lastError: unknown): Promise<void> {
    const ceilingMs = Math.min(RETRY_BACKOFF_MS_MAX, RETRY_BACKOFF_MS_BASE * 2 ** (round - 1));
    // Full jitter on the upper half, so clients that failed together do not retry together.
    let waitMs = ceilingMs / 2 + Math.random() * (ceilingMs / 2);
    if (deadlineAtMs !== undefined) {
      const leftMs = deadlineAtMs - Date.now();
      if (leftMs <= waitMs) throw new EtcdClientError(GrpcStatus.deadlineExceeded, "context deadline exceeded", undefined, method, { cause: lastError });
      waitMs = Math.min(waitMs, leftMs);
    }
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, waitMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private learn(channel: Channel, header: ResponseHeader | undefined): void {
    if (header === undefined) return;
    if (header.memberId !== 0n) this.memberIds.set(channel, header.memberId);
    // A newer term means an election happened since the leader was found.
    if (this.leader !== undefined && header.raftTerm > this.leaderTerm) this.forgetLeader();
  }

  private forgetLeader(): void {
    this.leader = undefined;
    this.leaderCheckedAtMs = Number.NEGATIVE_INFINITY;
  }

  private async pick(route: Route, tried: ReadonlySet<Channel>, signal: AbortSignal, deadlineAtMs: number | undefined): Promise<Channel> {
    if (route === "leader" && this.channels.length > 1) {
      const leader = await this.discoverLeader(signal, deadlineAtMs);
      if (leader !== undefined && !tried.has(leader)) return leader;
    }
    for (let offset = 0; offset < this.channels.length; offset++) {
      const channel = this.channels[(this.preferred + offset) % this.channels.length];
      if (!tried.has(channel)) return channel;
    }
    throw new Error("unreachable: every endpoint tried in this round");
  }

  private async discoverLeader(signal: AbortSignal, deadlineAtMs: number | undefined): Promise<Channel | undefined> {
    if (this.leader !== undefined) return this.leader;
    if (Date.now() - this.leaderCheckedAtMs < LEADER_RECHECK_INTERVAL_MS) return undefined;
    this.discovery ??= this.runDiscovery(deadlineAtMs).finally(() => (this.discovery = undefined));
    // Shared by concurrent callers; each stops waiting on its own signal.
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([this.discovery, aborted]);
    } catch {
      // The call's own signal ends it; its next step reports why.
      return undefined;
    }
  }

  private async runDiscovery(deadlineAtMs: number | undefined): Promise<Channel | undefined> {
    const { status } = clusterAndMaintenanceMethods();
    const boundMs = Date.now() + LEADER_DISCOVERY_TIMEOUT_MS_MAX;
    const discoveryDeadline = deadlineAtMs === undefined ? boundMs : Math.min(deadlineAtMs, boundMs);
    const answered: Array<{ channel: Channel; response: StatusResponse }> = [];
    const discovery = new AbortController();
    const signal = AbortSignal.any([this.lifetime.signal, discovery.signal]);
    // Done when every endpoint answered or failed, or as soon as one says it leads itself: a member that
    // cannot be reached (stopped, partitioned) must not hold every write up for the whole dial timeout.
    await new Promise<void>((resolve) => {
      let pending = this.channels.length;
      for (const channel of this.channels) {
        channel.unary(status, {} as EmptyRequest, signal, discoveryDeadline).then((response) => {
          answered.push({ channel, response });
          if (response.leader !== 0n && response.leader === response.header?.memberId) resolve();
        }, () => undefined).finally(() => {
          if (--pending === 0) resolve();
        });
      }
    });
    discovery.abort();
    // Every member id first: the leader's own answer may come after a follower's claim.
    for (const { channel, response } of answered) this.learn(channel, response.header);
    let claim: { leaderId: bigint; term: number } | undefined;
    for (const { response } of answered) {
      if (response.leader !== 0n && (claim === undefined || response.raftTerm > claim.term)) claim = { leaderId: response.leader, term: response.raftTerm };
    }
    const channel = claim === undefined ? undefined : this.channels.find((item) => this.memberIds.get(item) === claim.leaderId);
    this.leaderCheckedAtMs = Date.now();
    if (channel !== undefined && claim !== undefined && !this.closed) {
      this.leader = channel;
      this.leaderTerm = claim.term;
    }
    return channel;
  }
}
