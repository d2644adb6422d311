/**
 * Failures the runtime reports to its callers. The API layer maps them to
 * etcd's status codes and messages.
 */
import type { NodeId } from "../lib/ids.js";

export class NotLeaderError extends Error {
  override name = "NotLeaderError";
  constructor(readonly leader: NodeId, readonly reason: string) {
    super(leader === 0n ? `no leader (${reason})` : `not the leader; the leader is ${leader.toString(16)} (${reason})`);
  }
}

export class NoLeaderError extends Error {
  override name = "NoLeaderError";
  constructor(readonly reason = "no leader") {
    super(reason);
  }
}

/** The outcome is unknown: the write may or may not have been applied. */
export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

export class ProposalRefusedError extends Error {
  override name = "ProposalRefusedError";
  constructor(readonly reason: string, readonly leader: NodeId) {
    super(`proposal refused: ${reason}`);
  }
}

export class StoppedError extends Error {
  override name = "StoppedError";
  constructor() {
    super("the node is stopping");
  }
}
