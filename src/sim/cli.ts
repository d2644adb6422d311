/**
 * The simulator's command line:
 *   npm run sim -- --seed N [--nodes 3|5|7] [--steps N] [--fault name]   replay one seed with its trace
 *   npm run sim -- --seeds K [--first-seed S] [--nodes ..] [--steps N]   run K seeds from S
 *   add --storage wal to run the nodes on the production WAL over a crashable
 *   in-memory disk (--fault acknowledgeBeforeSync plants the WAL's fault)
 * Exits 1 on any violation (printing the failing seeds), 2 on bad usage.
 */
import { parseArgs } from "node:util";
import type { RaftFaults } from "../raft/types.js";
import type { WalFaults } from "../storage/wal/wal.js";
import { runSimulationAsync, type SimulationOptions, type StorageMode } from "./cluster.js";
import { formatCounters, formatFailure, PLANTED_FAULTS, runSeedsAsync, WAL_PLANTED_FAULTS, type PlantedFault, type WalPlantedFault } from "./runner.js";
import { CLUSTER_SIZES, type ClusterSize } from "./swarm.js";

/** The CI suite runs this many steps per seed, so `--seed N` alone replays a CI failure. */
export const DEFAULT_STEPS = 50_000;
const TRACE_EVENTS = 300;
const SEEDS_MAX = 10_000_000;

export class UsageError extends Error {
  override name = "UsageError";
}

export interface CliOptions {
  readonly seed?: number;
  readonly seeds?: number;
  readonly firstSeed: number;
  readonly nodeCount?: ClusterSize;
  readonly steps: number;
  readonly faults: RaftFaults;
  readonly storage: StorageMode;
  readonly walFaults: WalFaults;
  readonly traceEvents: number;
}

const STORAGE_MODES: readonly StorageMode[] = ["memory", "wal"];

function integer(text: string | undefined, name: string, low: number, high: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < low || value > high) throw new UsageError(`--${name} must be an integer in [${low}, ${high}], got ${JSON.stringify(text)}`);
  return value;
}

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        seed: { type: "string" },
        seeds: { type: "string" },
        "first-seed": { type: "string" },
        nodes: { type: "string" },
        steps: { type: "string" },
        fault: { type: "string", multiple: true },
        storage: { type: "string" },
        trace: { type: "string" },
      },
      strict: true,
    });
  } catch (cause) {
    throw new UsageError(cause instanceof Error ? cause.message : String(cause), { cause });
  }
  const values = parsed.values;
  const seed = integer(values.seed, "seed", 0, Number.MAX_SAFE_INTEGER);
  const seeds = integer(values.seeds, "seeds", 1, SEEDS_MAX);
  if ((seed === undefined) === (seeds === undefined)) throw new UsageError("give exactly one of --seed N or --seeds K");
  const nodes = integer(values.nodes, "nodes", 3, 7);
  if (nodes !== undefined && !CLUSTER_SIZES.includes(nodes as ClusterSize)) throw new UsageError(`--nodes must be one of ${CLUSTER_SIZES.join(", ")}`);
  const storage = (values.storage ?? "memory") as StorageMode;
  if (!STORAGE_MODES.includes(storage)) throw new UsageError(`--storage must be one of ${STORAGE_MODES.join(", ")}, got ${JSON.stringify(values.storage)}`);
  const faults: Record<string, boolean> = {};
  const walFaults: Record<string, boolean> = {};
  for (const name of values.fault ?? []) {
    if ((WAL_PLANTED_FAULTS as readonly string[]).includes(name)) {
      if (storage !== "wal") throw new UsageError(`--fault ${name} is a fault of the WAL: it needs --storage wal`);
      walFaults[name as WalPlantedFault] = true;
      continue;
    }
    if (!(PLANTED_FAULTS as readonly string[]).includes(name)) throw new UsageError(`unknown --fault ${name}; known: ${[...PLANTED_FAULTS, ...WAL_PLANTED_FAULTS].join(", ")}`);
    faults[name as PlantedFault] = true;
  }
  return {
    seed,
    seeds,
    firstSeed: integer(values["first-seed"], "first-seed", 0, Number.MAX_SAFE_INTEGER) ?? 1,
    nodeCount: nodes as ClusterSize | undefined,
    steps: integer(values.steps, "steps", 1, 100_000_000) ?? DEFAULT_STEPS,
    faults,
    storage,
    walFaults,
    traceEvents: integer(values.trace, "trace", 1, 1_000_000) ?? TRACE_EVENTS,
  };
}

/** Runs the command; resolves to the exit code. */
export async function main(argv: readonly string[], print: (line: string) => void): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    print(`sim: ${error.message}`);
    return 2;
  }
  if (options.seed !== undefined) {
    const result = await runSimulationAsync({ ...runOptions(options, options.seed), trace: true, traceEventsMax: options.traceEvents });
    if (result.violation !== null) {
      print(formatFailure(result));
      return 1;
    }
    print(result.trace.join("\n"));
    print(`seed ${result.seed} passed: ${result.description}`);
    print(`  ${result.steps} steps, ${result.simulatedMs.toFixed(0)}ms simulated; ${formatCounters(result.counters)}`);
    return 0;
  }
  const seeds = options.seeds ?? 0;
  print(`running ${seeds} seeds from ${options.firstSeed} (${options.steps} steps each${options.nodeCount ? `, ${options.nodeCount} nodes` : ""}, ${options.storage} storage)`);
  const summary = await runSeedsAsync({ ...runOptions(options, 0), firstSeed: options.firstSeed, seeds });
  for (const failure of summary.failures) {
    const replay = await runSimulationAsync({ ...runOptions(options, failure.seed), trace: true, traceEventsMax: options.traceEvents });
    print(formatFailure(replay));
  }
  print(`${summary.seedsRun} seeds [${options.firstSeed}, ${options.firstSeed + summary.seedsRun - 1}] in ${(summary.wallTimeMs / 1000).toFixed(1)}s, ${summary.steps} steps; ${summary.failures.length} failed`);
  print(`totals: ${formatCounters(summary.totals)}`);
  if (summary.failures.length > 0) {
    print(`FAILING SEEDS: ${summary.failures.map((failure) => failure.seed).join(" ")}`);
    return 1;
  }
  return 0;
}

function runOptions(options: CliOptions, seed: number): SimulationOptions {
  return { seed, steps: options.steps, nodeCount: options.nodeCount, faults: options.faults, storage: options.storage, walFaults: options.walFaults };
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, "/"));
if (invokedDirectly) {
  main(process.argv.slice(2), (line) => console.log(line)).then((code) => {
    process.exitCode = code;
  }, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
