/**
 * Mutation testing: switch on one planted fault of the core and search seeds
 * until the simulator reports a violation. Only the safety checkers' findings
 * count (a liveness stall or the core's own assertion is not proof that the
 * checkers have teeth).
 */
import type { RaftFaults } from "../../src/raft/types.js";
import { formatFailure, runSeeds } from "../../src/sim/runner.js";
import { runSimulation, type SimulationResult } from "../../src/sim/cluster.js";
import { MUTATION_SEEDS_MAX, MUTATION_STEPS_PER_SEED, SEARCH_WALL_TIME_MS_MAX, freshFirstSeed } from "./seed-budget.js";

export const CHECKER_PROPERTIES = ["election-safety", "log-matching", "leader-completeness", "state-machine-safety", "linearizable-read"];

export function searchForViolation(fault: keyof RaftFaults): SimulationResult | null {
  const firstSeed = freshFirstSeed();
  const faults: RaftFaults = { [fault]: true };
  const summary = runSeeds({
    firstSeed,
    seeds: MUTATION_SEEDS_MAX,
    steps: MUTATION_STEPS_PER_SEED,
    faults,
    stopAtFirstFailure: true,
    counts: (violation) => CHECKER_PROPERTIES.includes(violation.property),
    wallTimeMsMax: SEARCH_WALL_TIME_MS_MAX,
  });
  const found = summary.failures[0];
  if (found === undefined) {
    console.log(`${fault}: NOT caught in ${summary.seedsRun} seeds from ${firstSeed} (${(summary.wallTimeMs / 1000).toFixed(1)}s)`);
    return null;
  }
  console.log(`${fault}: caught by ${found.violation?.property} at seed ${found.seed} after ${summary.seedsRun} seeds from ${firstSeed} (${(summary.wallTimeMs / 1000).toFixed(1)}s); replay: npm run sim -- --seed ${found.seed} --steps ${MUTATION_STEPS_PER_SEED} --fault ${fault}`);
  const replay = runSimulation({ seed: found.seed, steps: MUTATION_STEPS_PER_SEED, faults, trace: true, traceEventsMax: 40 });
  console.log(formatFailure(replay));
  return found;
}
