/**
 * Runs ranges of seeds and formats failures: shared by the CLI and the tests.
 * Batch runs keep no trace (it is slow); a failing seed is replayed with the
 * trace on, which works because a run is a pure function of its seed.
 */
import type { RaftFaults } from "../raft/types.js";
import type { Violation } from "./checkers.js";
import { runSimulation, type SimulationCounters, type SimulationResult } from "./cluster.js";
import type { ClusterSize } from "./swarm.js";

export const PLANTED_FAULTS = [
  "commitAnyTerm",
  "ackBeforePersist",
  "voteIgnoresLog",
  "readIndexWithoutQuorum",
  "leaderCountsUnpersisted",
  "jointIncomingOnly",
] as const satisfies readonly (keyof RaftFaults)[];
export type PlantedFault = (typeof PLANTED_FAULTS)[number];

export interface SeedRunOptions {
  readonly firstSeed: number;
  readonly seeds: number;
  readonly steps: number;
  readonly nodeCount?: ClusterSize;
  readonly faults?: RaftFaults;
  /** Which violations count (default: all); the mutation tests count only the safety checkers' findings. */
  readonly counts?: (violation: Violation) => boolean;
  /** Stop at the first failing seed (mutation tests only need one). */
  readonly stopAtFirstFailure?: boolean;
  /** Give up after this much wall time (ms): keeps CI bounded on a slow machine. */
  readonly wallTimeMsMax?: number;
  readonly now?: () => number;
}

export interface SeedRunSummary {
  readonly seedsRun: number;
  readonly failures: SimulationResult[];
  readonly totals: SimulationCounters;
  readonly steps: number;
  readonly wallTimeMs: number;
}

export function runSeeds(options: SeedRunOptions): SeedRunSummary {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const failures: SimulationResult[] = [];
  let totals: SimulationCounters | null = null;
  let steps = 0;
  let seedsRun = 0;
  for (let offset = 0; offset < options.seeds; offset++) {
    if (options.wallTimeMsMax !== undefined && now() - started > options.wallTimeMsMax) break;
    const result = runSimulation({ seed: options.firstSeed + offset, steps: options.steps, nodeCount: options.nodeCount, faults: options.faults });
    seedsRun++;
    steps += result.steps;
    totals = totals === null ? { ...result.counters } : addCounters(totals, result.counters);
    if (result.violation !== null && (options.counts === undefined || options.counts(result.violation))) {
      failures.push(result);
      if (options.stopAtFirstFailure === true) break;
    }
  }
  return { seedsRun, failures, totals: totals ?? emptyCounters(), steps, wallTimeMs: now() - started };
}

function addCounters(total: SimulationCounters, more: SimulationCounters): SimulationCounters {
  const sum = { ...total };
  for (const key of Object.keys(sum) as (keyof SimulationCounters)[]) sum[key] += more[key];
  return sum;
}

function emptyCounters(): SimulationCounters {
  return {
    elections: 0, leaderChanges: 0, snapshotsCreated: 0, snapshotsInstalled: 0, membershipChangesProposed: 0,
    membershipChangesCompleted: 0, transfersRequested: 0, transfersCompleted: 0, readsIssued: 0, readsServed: 0,
    proposalsSubmitted: 0, proposalsCommitted: 0, proposalsRefused: 0, entriesApplied: 0, crashes: 0, loopCrashes: 0,
    restarts: 0, partitions: 0, messagesSent: 0, messagesDropped: 0, messagesDuplicated: 0, checks: 0,
  };
}

export function formatCounters(counters: SimulationCounters): string {
  return Object.entries(counters).map(([name, value]) => `${name}=${value}`).join(" ");
}

/** The report of a failing seed: what broke, the swarm it drew, and (if replayed with tracing) its last events. */
export function formatFailure(result: SimulationResult): string {
  const lines = [
    `seed ${result.seed} FAILED: ${result.violation?.property} at ${result.violation?.timeMs.toFixed(1)}ms: ${result.violation?.message}`,
    `  swarm: ${result.description}`,
    `  after ${result.steps} steps, ${result.simulatedMs.toFixed(0)}ms simulated; ${formatCounters(result.counters)}`,
  ];
  if (result.trace.length > 0) lines.push(`  last ${result.trace.length} events:`, ...result.trace.map((line) => `    ${line}`));
  return lines.join("\n");
}
