import { describe, expect, it } from "vitest";
import { CI_SEEDS_PER_FILE, SEARCH_WALL_TIME_MS_MAX, freshFirstSeed, runAndReport } from "./seed-budget.js";

// Half of the CI seed budget; seeds-a.test.ts runs the other half in the second vitest worker.
describe("the simulator over fresh seeds (part b)", () => {
  it("finds no safety or liveness violation in 1000 swarm-drawn clusters", () => {
    const summary = runAndReport("sim part b", freshFirstSeed(), CI_SEEDS_PER_FILE);
    expect(summary.seedsRun).toBe(CI_SEEDS_PER_FILE);
    expect(summary.failures.map((failure) => failure.seed)).toEqual([]);
    // A run that exercised nothing would pass vacuously: demand that the swarm did real work.
    expect(summary.totals.proposalsCommitted).toBeGreaterThan(CI_SEEDS_PER_FILE);
    expect(summary.totals.readsServed).toBeGreaterThan(CI_SEEDS_PER_FILE);
    expect(summary.totals.leaderChanges).toBeGreaterThan(CI_SEEDS_PER_FILE);
    expect(summary.totals.snapshotsInstalled).toBeGreaterThan(0);
    expect(summary.totals.membershipChangesCompleted).toBeGreaterThan(0);
    expect(summary.totals.transfersCompleted).toBeGreaterThan(0);
    expect(summary.totals.crashes).toBeGreaterThan(0);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);
});
