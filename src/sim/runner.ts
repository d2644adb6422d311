/**
 * Runs ranges of seeds and formats failures: shared by the CLI and the tests.
 * Batch runs keep no trace (it is slow); a failing seed is replayed with the
 * trace on, which works because a run is a pure function of its seed.
 */
import type { RaftFaults } from "../raft/types.js";
import type { WalFaults } from "../storage/wal/wal.js";
import type { Violation } from "./checkers.js";
import { runSimulation, runSimulationAsync, type DiskFaults, type SimulationCounters, type SimulationOptions, type SimulationResult, type StorageMode } from "./cluster.js";
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

/** Planted faults of the WAL, for WAL mode. */
export const WAL_PLANTED_FAULTS = ["acknowledgeBeforeSync"] as const satisfies readonly (keyof WalFaults)[];
export type WalPlantedFault = (typeof WAL_PLANTED_FAULTS)[number];

export interface SeedRunOptions {
  readonly firstSeed: number;
  readonly seeds: number;
  readonly steps: number;
  readonly nodeCount?: ClusterSize;
  readonly faults?: RaftFaults;
  readonly storage?: StorageMode;
  readonly walFaults?: WalFaults;
  readonly diskFaults?: DiskFaults;
  readonly checkDurability?: boolean;
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

/** Runs memory-mode seeds (synchronously, the fast path of the CI budget). */
export function runSeeds(options: SeedRunOptions): SeedRunSummary {
  if (options.storage === "wal") throw new RangeError("WAL-mode seeds run asynchronously: use runSeedsAsync()");
  const tally = new SeedTally(options);
  for (let offset = 0; offset < options.seeds && tally.wantsMore(); offset++) tally.add(runSimulation(seedOptions(options, offset)));
  return tally.summary();
}

/** Runs seeds in either storage mode. */
export async function runSeedsAsync(options: SeedRunOptions): Promise<SeedRunSummary> {
  const tally = new SeedTally(options);
  for (let offset = 0; offset < options.seeds && tally.wantsMore(); offset++) tally.add(await runSimulationAsync(seedOptions(options, offset)));
  return tally.summary();
}

function seedOptions(options: SeedRunOptions, offset: number): SimulationOptions {
  return {
    seed: options.firstSeed + offset, steps: options.steps, nodeCount: options.nodeCount, faults: options.faults,
    storage: options.storage, walFaults: options.walFaults, diskFaults: options.diskFaults, checkDurability: options.checkDurability,
  };
}

class SeedTally {
  private readonly now: () => number;
  private readonly started: number;
  private readonly failures: SimulationResult[] = [];
  private totals: SimulationCounters | null = null;
  private steps = 0;
  private seedsRun = 0;
  private stopped = false;

  constructor(private readonly options: SeedRunOptions) {
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  wantsMore(): boolean {
    if (this.stopped) return false;
    return this.options.wallTimeMsMax === undefined || this.now() - this.started <= this.options.wallTimeMsMax;
  }

  add(result: SimulationResult): void {
    this.seedsRun++;
    this.steps += result.steps;
    this.totals = this.totals === null ? { ...result.counters } : addCounters(this.totals, result.counters);
    if (result.violation !== null && (this.options.counts === undefined || this.options.counts(result.violation))) {
      this.failures.push(result);
      if (this.options.stopAtFirstFailure === true) this.stopped = true;
    }
  }

  summary(): SeedRunSummary {
    return { seedsRun: this.seedsRun, failures: this.failures, totals: this.totals ?? emptyCounters(), steps: this.steps, wallTimeMs: this.now() - this.started };
  }
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
    walAppends: 0, walOpens: 0, tornTailsCut: 0, crashesMidBatch: 0,
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
