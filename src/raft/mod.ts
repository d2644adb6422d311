/**
 * The Raft core of one group. Start here:
 * - a brand-new cluster: every initial member gets `storage.bootstrap(confState([1, 2, 3]))`
 *   on an empty MemoryStorage (the membership becomes committed ConfChange
 *   entries 1..n, applied in the first Ready like any other, so members added
 *   later learn it by replaying the log); then `new RawNode({ id, group,
 *   electionTicks, heartbeatTicks, storage, applied: 0, random: createPrng(seed) })`.
 * - a member added later: an empty MemoryStorage, no bootstrap; it learns the
 *   log (or a snapshot) from the leader once the leader has added it.
 * - a restart: the persisted storage and the state machine's applied index.
 * - drive it: tick(), step(message), propose(), then `ready()` → do what the
 *   Ready comment in types.ts says, in order → `advance()`.
 * - a committed ConfChange entry: `node.applyConfChange(decodeConfChange(entry.data))`.
 */
export * from "./types.js";
export { RawNode } from "./raw-node.js";
export { MemoryStorage, bootstrapEntries, CompactedError, SnapshotOutOfDateError } from "./memory-storage.js";
export {
  encodeConfChange, decodeConfChange, applyChange, entersJoint, leavesJoint,
  ConfChangeDecodeError, InvalidConfChangeError,
} from "./conf-change.js";
export { confState, emptyConfState, compareIds, sortedIds } from "./util.js";
