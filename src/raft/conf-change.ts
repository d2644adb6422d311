/**
 * Membership changes: the encoding of ConfChange entries and the rules that
 * turn a configuration plus a change into the next configuration (simple
 * one-voter changes, joint consensus, learners).
 */
import type { NodeId } from "../lib/ids.js";
import type { TrackerConfig } from "./progress.js";
import { ConfChangeTransition, ConfChangeType, type ConfChange } from "./types.js";
import { sortedIds } from "./util.js";

export class ConfChangeDecodeError extends Error {
  override name = "ConfChangeDecodeError";
}

export class InvalidConfChangeError extends Error {
  override name = "InvalidConfChangeError";
}

const CODEC_VERSION = 1;
const CHANGES_MAX = 1024;
const CONTEXT_BYTES_MAX = 1024 * 1024;

/** Layout: version u8, transition u8, count u16, count × (type u8, node id u64), context length u32, context. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = new Uint8Array(4 + change.changes.length * 9 + 4 + change.context.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, CODEC_VERSION);
  view.setUint8(1, change.transition);
  view.setUint16(2, change.changes.length);
  let at = 4;
  for (const single of change.changes) {
    view.setUint8(at, single.type);
    view.setBigUint64(at + 1, single.nodeId);
    at += 9;
  }
  view.setUint32(at, change.context.length);
  bytes.set(change.context, at + 4);
  return bytes;
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const fail = (why: string): never => {
    throw new ConfChangeDecodeError(`malformed conf change (${bytes.length} bytes): ${why}`);
  };
  if (bytes.length < 8) fail("shorter than its header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(0) !== CODEC_VERSION) fail(`unknown version ${view.getUint8(0)}`);
  const transition = view.getUint8(1);
  if (transition > ConfChangeTransition.JointExplicit) fail(`unknown transition ${transition}`);
  const count = view.getUint16(2);
  if (count > CHANGES_MAX) fail(`${count} changes exceed ${CHANGES_MAX}`);
  if (bytes.length < 4 + count * 9 + 4) fail(`truncated in its ${count} changes`);
  const changes = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const type = view.getUint8(at);
    if (type > ConfChangeType.AddLearner) fail(`unknown change type ${type} at change ${i}`);
    changes.push({ type: type as ConfChangeType, nodeId: view.getBigUint64(at + 1) as NodeId });
    at += 9;
  }
  const contextLength = view.getUint32(at);
  if (contextLength > CONTEXT_BYTES_MAX) fail(`context of ${contextLength} bytes`);
  if (bytes.length !== at + 4 + contextLength) fail(`length ${bytes.length} does not match its context of ${contextLength} bytes`);
  return { transition: transition as ConfChangeTransition, changes, context: bytes.slice(at + 4) };
}

/** Does the change leave a joint configuration (no changes at all)? */
export function leavesJoint(change: ConfChange): boolean {
  return change.changes.length === 0;
}

/** Does the change enter a joint configuration (rather than being a simple one-voter change)? */
export function entersJoint(change: ConfChange): boolean {
  return change.transition !== ConfChangeTransition.Auto || change.changes.length > 1;
}

/** The configuration after applying `change` to `config`, or an InvalidConfChangeError. */
export function applyChange(config: TrackerConfig, change: ConfChange): TrackerConfig {
  const joint = config.votersOutgoing.length > 0;
  if (leavesJoint(change)) {
    if (!joint) throw new InvalidConfChangeError("cannot leave a joint configuration: not in one");
    return {
      voters: config.voters.slice(),
      votersOutgoing: [],
      learners: sortedIds(new Set([...config.learners, ...config.learnersNext])),
      learnersNext: [],
      autoLeave: false,
    };
  }
  if (joint) throw new InvalidConfChangeError("configuration is already joint: leave it first");
  const enter = entersJoint(change);
  const voters = new Set(config.voters);
  const learners = new Set(config.learners);
  const learnersNext = new Set<NodeId>();
  const outgoing = enter ? new Set(config.voters) : new Set<NodeId>();
  for (const single of change.changes) {
    const id = single.nodeId;
    if (id === 0n) throw new InvalidConfChangeError("node id 0 is reserved");
    switch (single.type) {
      case ConfChangeType.AddNode:
        voters.add(id);
        learners.delete(id);
        learnersNext.delete(id);
        break;
      case ConfChangeType.AddLearner:
        voters.delete(id);
        // A voter of the outgoing half cannot also be a learner until the joint config is left.
        if (outgoing.has(id)) learnersNext.add(id);
        else learners.add(id);
        break;
      case ConfChangeType.RemoveNode:
        voters.delete(id);
        learners.delete(id);
        learnersNext.delete(id);
        break;
    }
  }
  if (voters.size === 0) throw new InvalidConfChangeError("the change removes every voter");
  if (!enter) {
    let differences = 0;
    for (const id of voters) if (!config.voters.includes(id)) differences++;
    for (const id of config.voters) if (!voters.has(id)) differences++;
    if (differences > 1) throw new InvalidConfChangeError("a simple change may add or remove at most one voter: use joint consensus");
  }
  return {
    voters: sortedIds(voters),
    votersOutgoing: sortedIds(outgoing),
    learners: sortedIds(learners),
    learnersNext: sortedIds(learnersNext),
    autoLeave: enter && change.transition !== ConfChangeTransition.JointExplicit,
  };
}
