import { describe, expect, it } from "vitest";
import { runSimulationAsync, runSimulation } from "../../src/sim/cluster.js";
import { main, parseCli, UsageError } from "../../src/sim/cli.js";
import { formatCounters, formatFailure, runSeeds, runSeedsAsync } from "../../src/sim/runner.js";
import { CHECKER_PROPERTIES } from "./mutation-search.js";
import { CI_STEPS_PER_SEED, SEARCH_WALL_TIME_MS_MAX as WAL_WALL_TIME_MS_MAX, freshFirstSeed } from "./seed-budget.js";

/**
 * The WAL storage mode: every node's log is the production Wal on a crashable
 * in-memory disk. Measured on the loaded 2-core machine: about 170 ms of CPU
 * per seed at the CI step count (a ten-minute soak ran 3,177 seeds), so these
 * seeds cost ~20 s. The CI step count lets `--seed N` alone replay a failure.
 */
const WAL_STEPS_PER_SEED = CI_STEPS_PER_SEED;
const WAL_SEEDS = 120;
/** The planted WAL fault is found within a seed or two; this bounds the search. */
const WAL_MUTATION_SEEDS_MAX = 200;

describe("the simulator in WAL storage mode", () => {
  it("replays exactly from its seed, torn writes and recoveries included", async () => {
    const first = await runSimulationAsync({ seed: 4, steps: 8000, storage: "wal", trace: true, traceEventsMax: 300 });
    const second = await runSimulationAsync({ seed: 4, steps: 8000, storage: "wal", trace: true, traceEventsMax: 300 });
    expect(first.violation).toBeNull();
    expect(first.counters.walAppends).toBeGreaterThan(0);
    expect(second.counters).toEqual(first.counters);
    expect(second.trace).toEqual(first.trace);
    expect(second.simulatedMs).toBe(first.simulatedMs);
    const other = await runSimulationAsync({ seed: 5, steps: 8000, storage: "wal" });
    expect(other.counters).not.toEqual(first.counters);
  });

  it("draws the same cluster from a seed as memory mode, and says it runs on the WAL", async () => {
    const wal = await runSimulationAsync({ seed: 9, steps: 2000, storage: "wal" });
    const memory = runSimulation({ seed: 9, steps: 2000 });
    expect(wal.swarm).toEqual(memory.swarm);
    expect(wal.description).toMatch(/storage=wal segment=\d+KiB$/);
    expect(memory.description).not.toMatch(/storage=wal/);
    expect(memory.counters.walAppends).toBe(0);
  });

  it("refuses to run WAL mode through the synchronous entry points", () => {
    expect(() => runSimulation({ seed: 1, steps: 10, storage: "wal" })).toThrow(/runAsync/);
    expect(() => runSeeds({ firstSeed: 1, seeds: 1, steps: 10, storage: "wal" })).toThrow(/runSeedsAsync/);
  });

  it(`finds no violation in ${WAL_SEEDS} fresh seeds while crashes tear WAL writes in the middle of batches`, async () => {
    const firstSeed = freshFirstSeed();
    console.log(`sim wal: first seed ${firstSeed}, ${WAL_SEEDS} seeds × ${WAL_STEPS_PER_SEED} steps (replay one with: npm run sim -- --storage wal --seed N)`);
    const summary = await runSeedsAsync({ firstSeed, seeds: WAL_SEEDS, steps: WAL_STEPS_PER_SEED, storage: "wal", wallTimeMsMax: WAL_WALL_TIME_MS_MAX });
    console.log(`sim wal: ${summary.seedsRun} seeds in ${(summary.wallTimeMs / 1000).toFixed(1)}s, ${summary.failures.length} failed; ${formatCounters(summary.totals)}`);
    for (const failure of summary.failures.slice(0, 3)) {
      const replay = await runSimulationAsync({ seed: failure.seed, steps: WAL_STEPS_PER_SEED, storage: "wal", trace: true, traceEventsMax: 120 });
      console.log(formatFailure(replay));
    }
    expect(summary.seedsRun).toBe(WAL_SEEDS);
    expect(summary.failures.map((failure) => failure.seed)).toEqual([]);
    // The mode proves something only if crashes really hit batches and recovery really cut torn writes.
    expect(summary.totals.crashesMidBatch).toBeGreaterThan(WAL_SEEDS / 5);
    expect(summary.totals.tornTailsCut).toBeGreaterThan(0);
    expect(summary.totals.walOpens).toBeGreaterThan(summary.totals.restarts);
    expect(summary.totals.proposalsCommitted).toBeGreaterThan(WAL_SEEDS);
    expect(summary.totals.snapshotsInstalled).toBeGreaterThan(0);
    expect(summary.totals.leaderChanges).toBeGreaterThan(WAL_SEEDS);
  }, WAL_WALL_TIME_MS_MAX + 60_000);

  it("reports lost acknowledged writes when the WAL acknowledges before its fdatasync", async () => {
    const firstSeed = freshFirstSeed();
    const summary = await runSeedsAsync({
      firstSeed, seeds: WAL_MUTATION_SEEDS_MAX, steps: WAL_STEPS_PER_SEED, storage: "wal",
      walFaults: { acknowledgeBeforeSync: true }, stopAtFirstFailure: true, wallTimeMsMax: WAL_WALL_TIME_MS_MAX,
    });
    const found = summary.failures[0];
    console.log(found === undefined
      ? `acknowledgeBeforeSync: NOT caught in ${summary.seedsRun} seeds from ${firstSeed}`
      : `acknowledgeBeforeSync: caught by ${found.violation?.property} at seed ${found.seed} after ${summary.seedsRun} seeds from ${firstSeed}; replay: npm run sim -- --storage wal --fault acknowledgeBeforeSync --seed ${found.seed}`);
    expect(found?.violation?.property).toBe("durability");
    expect(found?.violation?.message).toMatch(/restarted without what its WAL acknowledged/);
  }, WAL_WALL_TIME_MS_MAX + 60_000);

  it("counts damage on the disk as a violation: recovery refuses it by file and offset, or the ledger sees what it cost", async () => {
    const properties = new Set<string>();
    let refusal = "";
    for (let seed = 1; seed <= 10; seed++) {
      const result = await runSimulationAsync({ seed, steps: 20_000, storage: "wal", diskFaults: { flipBitAtCrash: true } });
      if (result.counters.crashes === 0) continue;
      expect(result.violation, `seed ${seed}`).not.toBeNull();
      properties.add(result.violation?.property ?? "none");
      if (result.violation?.property === "storage-error") refusal = result.violation.message;
    }
    expect([...properties].filter((property) => property !== "storage-error" && property !== "durability")).toEqual([]);
    expect(refusal).toMatch(/could not open its WAL: WalCorruptionError: WAL corruption in \/data\/wal\/\d+\.wal at byte offset \d+/);
  });

  it("lets Raft's own checkers catch a WAL that acknowledges before fdatasync, with the durability ledger off", async () => {
    const firstSeed = freshFirstSeed();
    const summary = await runSeedsAsync({
      firstSeed, seeds: WAL_MUTATION_SEEDS_MAX, steps: WAL_STEPS_PER_SEED, storage: "wal", checkDurability: false,
      walFaults: { acknowledgeBeforeSync: true }, stopAtFirstFailure: true, wallTimeMsMax: WAL_WALL_TIME_MS_MAX,
      counts: (violation) => CHECKER_PROPERTIES.includes(violation.property),
    });
    const found = summary.failures[0];
    console.log(found === undefined
      ? `acknowledgeBeforeSync without the ledger: NOT caught in ${summary.seedsRun} seeds from ${firstSeed}`
      : `acknowledgeBeforeSync without the ledger: caught by ${found.violation?.property} at seed ${found.seed} after ${summary.seedsRun} seeds from ${firstSeed}`);
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, WAL_WALL_TIME_MS_MAX + 60_000);
});

describe("the simulator command line's storage mode", () => {
  it("parses --storage and routes the WAL's planted fault", () => {
    expect(parseCli(["--seed", "3"])).toMatchObject({ storage: "memory", walFaults: {} });
    expect(parseCli(["--seeds", "2", "--storage", "wal", "--fault", "acknowledgeBeforeSync", "--fault", "commitAnyTerm"]))
      .toMatchObject({ storage: "wal", walFaults: { acknowledgeBeforeSync: true }, faults: { commitAnyTerm: true } });
  });

  it("rejects an unknown mode and a WAL fault without the WAL", () => {
    expect(() => parseCli(["--seed", "3", "--storage", "disk"])).toThrow(UsageError);
    expect(() => parseCli(["--seed", "3", "--storage", "disk"])).toThrow(/--storage must be one of memory, wal/);
    expect(() => parseCli(["--seed", "3", "--fault", "acknowledgeBeforeSync"])).toThrow(/needs --storage wal/);
  });

  it("runs WAL-mode seeds and names a failing one", async () => {
    const passed: string[] = [];
    expect(await main(["--seeds", "2", "--first-seed", "7", "--steps", "3000", "--storage", "wal"], (line) => passed.push(line))).toBe(0);
    expect(passed.join("\n")).toMatch(/wal storage[\s\S]*2 seeds \[7, 8\].*0 failed/);
    const failed: string[] = [];
    expect(await main(["--seeds", "20", "--first-seed", "1", "--steps", "20000", "--storage", "wal", "--fault", "acknowledgeBeforeSync", "--trace", "10"], (line) => failed.push(line))).toBe(1);
    expect(failed.join("\n")).toMatch(/seed \d+ FAILED: durability/);
  });
});
