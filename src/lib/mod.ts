export { assert, unreachable, AssertionError } from "./assert.js";
export { createPrng, Xoshiro128, type Prng } from "./prng.js";
export { crc32c } from "./crc32c.js";
export type { Clock } from "./clock.js";
export { limits } from "./limits.js";
export {
  NO_NODE, MAX_UINT64, nodeId, clusterId, groupId, formatId,
  type NodeId, type ClusterId, type GroupId, type Term, type LogIndex,
} from "./ids.js";
