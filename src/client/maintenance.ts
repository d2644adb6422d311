/**
 * etcd's Maintenance service: Status (of one endpoint, or of every endpoint
 * for `cairn status`), HashKV, MoveLeader and the Snapshot stream.
 */
import type { EmptyRequest, HashKVResponse, HeaderOnlyResponse, SnapshotResponse, StatusResponse } from "../api/mod.js";
import type { Channel } from "./channel.js";
import type { DispatchOptions, Dispatcher } from "./dispatcher.js";
import { InvalidRequestError, TransportError } from "./errors.js";
import { clusterAndMaintenanceMethods } from "./methods.js";

export interface EndpointOption {
  /** Ask this endpoint ("host:port" or its URL) and no other. */
  readonly endpoint?: string;
}

/** One endpoint's answer to Status, or why it gave none. */
export type EndpointStatus =
  | { readonly endpoint: string; readonly status: StatusResponse; readonly error?: undefined }
  | { readonly endpoint: string; readonly status?: undefined; readonly error: unknown };

const EMPTY_REQUEST: EmptyRequest = {};

export class MaintenanceClient {
  constructor(private readonly dispatcher: Dispatcher) {}

  /** The status of the given endpoint, or of any endpoint that answers. */
  async status(options: EndpointOption & DispatchOptions = {}): Promise<StatusResponse> {
    const method = clusterAndMaintenanceMethods().status;
    if (options.endpoint !== undefined) return this.dispatcher.unaryAt(this.dispatcher.channelOf(options.endpoint), method, EMPTY_REQUEST, "read", options);
    return this.dispatcher.unary(method, EMPTY_REQUEST, "read", "any", options);
  }

  /** Status of every endpoint at once, in the client's endpoint order; one endpoint's failure does not hide the others. */
  async statusOfEndpoints(options: DispatchOptions = {}): Promise<EndpointStatus[]> {
    const method = clusterAndMaintenanceMethods().status;
    return Promise.all(this.dispatcher.channels.map(async (channel): Promise<EndpointStatus> => {
      const endpoint = channel.endpoint.address;
      try {
        return { endpoint, status: await this.dispatcher.unaryAt(channel, method, EMPTY_REQUEST, "read", options) };
      } catch (error) {
        return { endpoint, error };
      }
    }));
  }

  /** The hash of the key-value history up to `revision` (0: current). */
  async hashKV(revision = 0, options: EndpointOption & DispatchOptions = {}): Promise<HashKVResponse> {
    if (!Number.isSafeInteger(revision) || revision < 0) throw new InvalidRequestError(`revision must be a non-negative integer, got ${revision}`);
    const method = clusterAndMaintenanceMethods().hashKV;
    if (options.endpoint !== undefined) return this.dispatcher.unaryAt(this.dispatcher.channelOf(options.endpoint), method, { revision }, "read", options);
    return this.dispatcher.unary(method, { revision }, "read", "any", options);
  }

  /** Hands leadership to member `targetId`; sent to the leader, which alone can do it. */
  async moveLeader(targetId: bigint, options: DispatchOptions = {}): Promise<HeaderOnlyResponse> {
    if (typeof targetId !== "bigint" || targetId <= 0n) throw new InvalidRequestError(`a member id must be a positive 64-bit integer, got ${String(targetId)}`);
    return this.dispatcher.unary(clusterAndMaintenanceMethods().moveLeader, { targetID: targetId }, "write", "leader", options);
  }

  /**
   * Streams a snapshot of the given endpoint (or the first that connects):
   * the first message's header names the revision it holds, the last says
   * remainingBytes 0. No deadline unless `timeoutMs` is given. Only a
   * connection that was never made moves on to the next endpoint: a stream
   * that started cannot be resumed elsewhere.
   */
  async *snapshot(options: EndpointOption & DispatchOptions = {}): AsyncGenerator<SnapshotResponse, void, undefined> {
    const method = clusterAndMaintenanceMethods().snapshot;
    const channels: readonly Channel[] = options.endpoint !== undefined ? [this.dispatcher.channelOf(options.endpoint)] : this.dispatcher.channels;
    const streamOptions = { signal: options.signal, timeoutMs: options.timeoutMs ?? 0 };
    for (let index = 0; index < channels.length; index++) {
      const stream = this.dispatcher.serverStreamAt(channels[index], method, EMPTY_REQUEST, streamOptions);
      let started = false;
      try {
        for await (const response of stream) {
          started = true;
          yield response;
        }
        return;
      } catch (error) {
        const unsent = error instanceof TransportError && !error.requestSent;
        if (!started && unsent && index + 1 < channels.length) continue;
        throw this.dispatcher.reportable(error, "read", method.name);
      }
    }
  }
}
