/**
 * etcd's Cluster service: list, add (voter or learner), remove, update and
 * promote members. Member ids are bigint end to end. Every change is a
 * write: it goes to the leader and is never re-sent once its outcome is
 * unknown (a re-sent MemberAdd could add a second member).
 */
import type { MemberAddResponse, MembersResponse } from "../api/mod.js";
import type { DispatchOptions, Dispatcher } from "./dispatcher.js";
import { InvalidRequestError } from "./errors.js";
import { clusterAndMaintenanceMethods } from "./methods.js";

function checkId(id: bigint): bigint {
  if (typeof id !== "bigint" || id <= 0n || id >= 1n << 64n) throw new InvalidRequestError(`a member id must be a positive 64-bit integer, got ${String(id)}`);
  return id;
}

export class ClusterClient {
  constructor(private readonly dispatcher: Dispatcher) {}

  /** `linearizable` asks the leader to confirm the list is current (otherwise any member answers from its own state). */
  async memberList(options: { linearizable?: boolean } & DispatchOptions = {}): Promise<MembersResponse> {
    const linearizable = options.linearizable ?? false;
    return this.dispatcher.unary(clusterAndMaintenanceMethods().memberList, { linearizable }, "read", linearizable ? "leader" : "any", options);
  }

  async memberAdd(peerUrls: readonly string[], options: { isLearner?: boolean } & DispatchOptions = {}): Promise<MemberAddResponse> {
    if (peerUrls.length === 0) throw new InvalidRequestError("a new member needs at least one peer URL");
    const request = { peerURLs: [...peerUrls], isLearner: options.isLearner ?? false };
    return this.dispatcher.unary(clusterAndMaintenanceMethods().memberAdd, request, "write", "leader", options);
  }

  async memberRemove(id: bigint, options: DispatchOptions = {}): Promise<MembersResponse> {
    return this.dispatcher.unary(clusterAndMaintenanceMethods().memberRemove, { ID: checkId(id) }, "write", "leader", options);
  }

  async memberUpdate(id: bigint, peerUrls: readonly string[], options: DispatchOptions = {}): Promise<MembersResponse> {
    return this.dispatcher.unary(clusterAndMaintenanceMethods().memberUpdate, { ID: checkId(id), peerURLs: [...peerUrls] }, "write", "leader", options);
  }

  async memberPromote(id: bigint, options: DispatchOptions = {}): Promise<MembersResponse> {
    return this.dispatcher.unary(clusterAndMaintenanceMethods().memberPromote, { ID: checkId(id) }, "write", "leader", options);
  }
}
