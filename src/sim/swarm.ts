/**
 * Swarm testing: every seed draws its own mix of faults and rates, so that
 * across many seeds some runs hammer one fault hard while others leave it out
 * entirely (a uniform mix dilutes rare interactions).
 */
import type { Prng } from "../lib/prng.js";
import type { RaftFaults } from "../raft/types.js";
import { PARTITION_KINDS, type NetworkConfig, type PartitionKind } from "./network.js";

export type ClusterSize = 3 | 5 | 7;
export const CLUSTER_SIZES: readonly ClusterSize[] = [3, 5, 7];

export interface SwarmConfig {
  readonly nodeCount: ClusterSize;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnly: "safe" | "lease";
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly tickIntervalMs: number;
  /** Each node's tick period is tickIntervalMs times a factor in [1 - drift, 1 + drift]; 0 under leases, which assume equal clock rates. */
  readonly tickDrift: number;
  readonly network: NetworkConfig;
  readonly partitionKinds: readonly PartitionKind[];
  /** Mean time between partition changes; 0 turns partitions off. */
  readonly partitionIntervalMs: number;
  readonly crashIntervalMs: number;
  readonly downtimeMsMax: number;
  /** Chance of a crash at each boundary between two phases of a node's Ready loop. */
  readonly loopCrashProbability: number;
  readonly diskDelayMsMin: number;
  readonly diskDelayMsMax: number;
  readonly membershipIntervalMs: number;
  /** Chance that a membership change is a multi-change (joint consensus) one. */
  readonly jointProbability: number;
  /** A node snapshots and compacts once it applied this many entries past its snapshot; 0 never. */
  readonly snapshotEntries: number;
  readonly compactRetainMax: number;
  readonly transferIntervalMs: number;
  readonly campaignIntervalMs: number;
  readonly clientCount: number;
  readonly clientIntervalMs: number;
  readonly readProbability: number;
  /** Flow control: small messages split the log across appends (needed for Figure 8 histories). */
  readonly messageBytesMax: number;
  readonly inflightMessagesMax: number;
  /** The operator never shrinks the voters below this (1 exercises single-voter commits). */
  readonly votersMin: number;
  readonly faults: RaftFaults;
}

export interface SwarmOptions {
  readonly nodeCount?: ClusterSize;
  readonly faults?: RaftFaults;
}

/** Off with probability `offProbability`, else a value in [low, high]. */
function maybe(random: Prng, offProbability: number, low: number, high: number): number {
  return random.chance(offProbability) ? 0 : random.between(low, high);
}

export function drawSwarm(random: Prng, options: SwarmOptions = {}): SwarmConfig {
  const nodeCount = options.nodeCount ?? random.pick(CLUSTER_SIZES);
  const checkQuorum = random.chance(0.6);
  const readOnly = checkQuorum && random.chance(0.35) ? "lease" : "safe";
  const tickIntervalMs = 10;
  const delayMsMax = random.pick([2, 5, 10, 20, 40]);
  const network: NetworkConfig = {
    delayMsMin: 1,
    delayMsMax,
    linkDelaySpreadMs: random.pick([0, 0, 5, 15]),
    lossProbability: random.pick([0, 0, 0.01, 0.05, 0.15, 0.3]),
    duplicateProbability: random.pick([0, 0, 0.02, 0.1]),
    reorderProbability: random.pick([0, 0, 0.05, 0.2]),
    reorderDelayMsMax: 30,
  };
  const partitionKinds = PARTITION_KINDS.filter(() => random.chance(0.6));
  const diskDelayMsMax = random.pick([2, 5, 15, 40]);
  return {
    nodeCount,
    preVote: random.chance(0.6),
    checkQuorum,
    readOnly,
    electionTicks: random.pick([5, 10]),
    heartbeatTicks: 1,
    tickIntervalMs,
    tickDrift: readOnly === "lease" ? 0 : random.pick([0, 0.05, 0.2]),
    network,
    partitionKinds,
    partitionIntervalMs: partitionKinds.length === 0 ? 0 : maybe(random, 0.25, 50, 600),
    crashIntervalMs: maybe(random, 0.3, 60, 800),
    downtimeMsMax: random.pick([30, 150, 500]),
    loopCrashProbability: random.pick([0, 0, 0.001, 0.005, 0.02]),
    diskDelayMsMin: 1,
    diskDelayMsMax,
    membershipIntervalMs: maybe(random, 0.3, 50, 500),
    jointProbability: random.pick([0, 0.5, 0.9]),
    snapshotEntries: maybe(random, 0.3, 3, 60),
    compactRetainMax: random.pick([0, 5, 30]),
    transferIntervalMs: maybe(random, 0.5, 100, 900),
    campaignIntervalMs: maybe(random, 0.5, 50, 600),
    clientCount: random.between(1, 4),
    clientIntervalMs: random.pick([5, 15, 40]),
    readProbability: random.pick([0.2, 0.5, 0.8]),
    messageBytesMax: random.pick([1024 * 1024, 256, 64]),
    inflightMessagesMax: random.pick([256, 8, 2]),
    votersMin: random.pick([1, 2, 3]),
    faults: options.faults ?? {},
  };
}

export function describeSwarm(swarm: SwarmConfig): string {
  const parts = [
    `${swarm.nodeCount} nodes`,
    `preVote=${swarm.preVote}`,
    `checkQuorum=${swarm.checkQuorum}`,
    `readOnly=${swarm.readOnly}`,
    `election=${swarm.electionTicks}t×${swarm.tickIntervalMs}ms drift=${swarm.tickDrift}`,
    `net delay ${swarm.network.delayMsMin}-${swarm.network.delayMsMax}ms loss=${swarm.network.lossProbability} dup=${swarm.network.duplicateProbability} reorder=${swarm.network.reorderProbability}`,
    `partitions=${swarm.partitionIntervalMs === 0 ? "off" : `${swarm.partitionKinds.join("/")} every ~${swarm.partitionIntervalMs}ms`}`,
    `crashes=${swarm.crashIntervalMs === 0 ? "off" : `every ~${swarm.crashIntervalMs}ms`} loopCrash=${swarm.loopCrashProbability}`,
    `disk ${swarm.diskDelayMsMin}-${swarm.diskDelayMsMax}ms`,
    `membership=${swarm.membershipIntervalMs === 0 ? "off" : `every ~${swarm.membershipIntervalMs}ms joint=${swarm.jointProbability}`}`,
    `snapshot=${swarm.snapshotEntries === 0 ? "off" : `every ${swarm.snapshotEntries} entries`}`,
    `transfers=${swarm.transferIntervalMs === 0 ? "off" : `every ~${swarm.transferIntervalMs}ms`}`,
    `flow ${swarm.messageBytesMax}B×${swarm.inflightMessagesMax} votersMin=${swarm.votersMin}`,
    `clients=${swarm.clientCount} every ~${swarm.clientIntervalMs}ms reads=${swarm.readProbability}`,
  ];
  const faults = Object.entries(swarm.faults).filter(([, on]) => on).map(([name]) => name);
  if (faults.length > 0) parts.push(`PLANTED FAULTS: ${faults.join(",")}`);
  return parts.join("; ");
}
