/**
 * The Cairn client: etcd's KV, Cluster and Maintenance over the lean HTTP/2
 * channel, with leader-aware routing over a list of endpoints and retries
 * only where they are safe (see retry-policy.ts).
 *
 *   const client = new Client({ endpoints: ["127.0.0.1:2379", "127.0.0.1:12379"] });
 *   await client.kv.put("greeting", "hello");
 *   const { kvs } = await client.kv.get("greeting");
 *   await client.close();
 */
import type { TlsOptions } from "./channel.js";
import { ClusterClient } from "./cluster.js";
import { Dispatcher } from "./dispatcher.js";
import { parseEndpoints } from "./endpoint.js";
import { InvalidRequestError } from "./errors.js";
import { KvClient, type Bytes } from "./kv.js";
import { LeaseClient } from "./lease.js";
import { acquireLock, Election, type Lock, type LockOptions } from "./concurrency.js";
import { MaintenanceClient } from "./maintenance.js";
import { WatchClient } from "./watch.js";

/** etcdctl's --command-timeout default. */
export const COMMAND_TIMEOUT_MS_DEFAULT = 5000;
/** etcdctl's --dial-timeout default. */
export const DIAL_TIMEOUT_MS_DEFAULT = 2000;
/**
 * Largest response message accepted: the server's default cap on one Range
 * answer (64 MiB, api/services RANGE_RESPONSE_BYTES_MAX_DEFAULT) plus room
 * for the header and framing.
 */
export const RECEIVE_MESSAGE_BYTES_MAX_DEFAULT = 65 * 1024 * 1024;

export interface ClientOptions {
  /** "host:port", "http://host:port" or "https://host:port"; an array or one comma-separated string. */
  readonly endpoints: string | readonly string[];
  /** Default deadline of each call, retries included (ms); 0 for none. */
  readonly commandTimeoutMs?: number;
  readonly dialTimeoutMs?: number;
  /** For https:// endpoints. */
  readonly tls?: TlsOptions;
  /** Attempts per call before giving up (see dispatcher.ts for the default). */
  readonly attemptsMax?: number;
  readonly receiveMessageBytesMax?: number;
}

function positive(name: string, value: number, allowZero: boolean): number {
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) throw new InvalidRequestError(`${name} must be a positive number, got ${value}`);
  return value;
}

export class Client {
  readonly kv: KvClient;
  readonly cluster: ClusterClient;
  readonly maintenance: MaintenanceClient;
  readonly lease: LeaseClient;
  readonly watch: WatchClient;
  private readonly dispatcher: Dispatcher;

  constructor(options: ClientOptions) {
    const endpoints = parseEndpoints(options.endpoints);
    this.dispatcher = new Dispatcher(endpoints, {
      commandTimeoutMs: positive("commandTimeoutMs", options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS_DEFAULT, true),
      dialTimeoutMs: positive("dialTimeoutMs", options.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT, false),
      receiveMessageBytesMax: positive("receiveMessageBytesMax", options.receiveMessageBytesMax ?? RECEIVE_MESSAGE_BYTES_MAX_DEFAULT, false),
      tls: options.tls,
      attemptsMax: options.attemptsMax,
    });
    this.kv = new KvClient(this.dispatcher);
    this.cluster = new ClusterClient(this.dispatcher);
    this.maintenance = new MaintenanceClient(this.dispatcher);
    this.watch = new WatchClient(this.dispatcher);
    this.lease = new LeaseClient(this.dispatcher);
  }

  /**
   * Acquires the distributed lock `name` (etcd's concurrency.Mutex, so
   * etcdctl and Go clients share it). The answer carries the fencing token:
   * see docs/locks.md for why a lock is not enough without it.
   */
  lock(name: Bytes, options: LockOptions = {}): Promise<Lock> {
    return acquireLock(this.kv, this.lease, this.watch, name, options);
  }

  /** The election `name` (etcd's concurrency.Election): campaign, proclaim, resign, leader, observe. */
  election(name: Bytes): Election {
    return new Election(this.kv, this.lease, this.watch, name);
  }

  /** The endpoints as "host:port", in the order given. */
  get endpoints(): string[] {
    return this.dispatcher.channels.map((channel) => channel.endpoint.address);
  }

  /** The member id each endpoint has answered with so far ("host:port" → id). */
  memberIds(): Map<string, bigint> {
    const ids = new Map<string, bigint>();
    for (const channel of this.dispatcher.channels) {
      const id = this.dispatcher.memberIdOf(channel);
      if (id !== undefined) ids.set(channel.endpoint.address, id);
    }
    return ids;
  }

  /** The endpoint writes currently go to, after finding the leader if needed; undefined when no endpoint is known to lead. */
  async leaderEndpoint(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string | undefined> {
    return (await this.dispatcher.leaderChannel(options))?.endpoint.address;
  }

  /** Closes every connection; running calls fail with ClientClosedError. Idempotent. */
  async close(): Promise<void> {
    this.dispatcher.close();
  }

  get closed(): boolean {
    return this.dispatcher.closed;
  }
}
