/**
 * The CI budget of the simulator suite, shared by its test files. Measured on
 * the 2-core CI machine: about 15 ms of CPU per seed at 50,000 steps, so the
 * 2,000 CI seeds cost ~30 s of CPU, split over two files (two vitest workers).
 */
import { randomInt } from "node:crypto";
import { expect } from "vitest";
import { formatCounters, formatFailure, runSeeds, type SeedRunSummary } from "../../src/sim/runner.js";
import { runSimulation } from "../../src/sim/cluster.js";
import { DEFAULT_STEPS } from "../../src/sim/cli.js";

export const CI_STEPS_PER_SEED = DEFAULT_STEPS;
export const CI_SEEDS_PER_FILE = 1000;
/** Mutation tests stop at the first violation; this bounds the search when a fault hides well. */
export const MUTATION_SEEDS_MAX = 2500;
export const MUTATION_STEPS_PER_SEED = 40_000;
/** Wall-time guard for a loaded machine: a search that runs out of time fails loudly, it never passes. */
export const SEARCH_WALL_TIME_MS_MAX = 90_000;

/** A first seed drawn fresh on every run (from the test, never inside the simulator), so CI keeps exploring. */
export function freshFirstSeed(): number {
  return randomInt(1, 2 ** 40);
}

/** Runs a range of seeds and prints what a failure needs to be replayed. */
export function runAndReport(label: string, firstSeed: number, seeds: number): SeedRunSummary {
  console.log(`${label}: first seed ${firstSeed}, ${seeds} seeds × ${CI_STEPS_PER_SEED} steps (replay one with: npm run sim -- --seed N --steps ${CI_STEPS_PER_SEED})`);
  const summary = runSeeds({ firstSeed, seeds, steps: CI_STEPS_PER_SEED, wallTimeMsMax: SEARCH_WALL_TIME_MS_MAX });
  console.log(`${label}: ${summary.seedsRun} seeds in ${(summary.wallTimeMs / 1000).toFixed(1)}s, ${summary.failures.length} failed; ${formatCounters(summary.totals)}`);
  for (const failure of summary.failures.slice(0, 3)) {
    const replay = runSimulation({ seed: failure.seed, steps: CI_STEPS_PER_SEED, trace: true, traceEventsMax: 120 });
    console.log(formatFailure(replay));
  }
  if (summary.failures.length > 0) console.log(`${label}: FAILING SEEDS ${summary.failures.map((failure) => failure.seed).join(" ")}`);
  return summary;
}

/**
 * Half of the CI seed budget from a fresh first seed, with the demand that
 * the swarm did real work (a run that exercised nothing would pass vacuously).
 * Two test files call it so vitest's two workers share the 2 cores.
 */
export function checkFreshSeeds(label: string): void {
  const summary = runAndReport(label, freshFirstSeed(), CI_SEEDS_PER_FILE);
  expect(summary.seedsRun).toBe(CI_SEEDS_PER_FILE);
  expect(summary.failures.map((failure) => failure.seed)).toEqual([]);
  expect(summary.totals.proposalsCommitted).toBeGreaterThan(CI_SEEDS_PER_FILE);
  expect(summary.totals.readsServed).toBeGreaterThan(CI_SEEDS_PER_FILE);
  expect(summary.totals.leaderChanges).toBeGreaterThan(CI_SEEDS_PER_FILE);
  expect(summary.totals.snapshotsInstalled).toBeGreaterThan(0);
  expect(summary.totals.membershipChangesCompleted).toBeGreaterThan(0);
  expect(summary.totals.transfersCompleted).toBeGreaterThan(0);
  expect(summary.totals.crashes).toBeGreaterThan(0);
}
