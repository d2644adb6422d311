/**
 * The fault harness in CI: two short runs against a real 3-member cluster
 * with kill -9, SIGSTOP and partitions (fixed seeds, so a failure replays
 * with `npm run faults -- --seed S ...`), which must pass every checker;
 * and one run against a member built with a planted bug, which must be
 * caught. Needs root, `ip` and `iptables` (.ci/run installs them): without
 * them the harness exits 2 and these tests fail, loudly, rather than skip.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { acquireClusterLock, ensureBuilt, releaseClusterLock } from "../integration/cluster.js";
import type { RunSummary } from "./main.js";

const REPOSITORY = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const HARNESS = join(REPOSITORY, "dist/test/faults/main.js");
const RUN_SECONDS = 45;
/** The fault phase, then up to a minute to start, heal, check liveness, read back and check. */
const RUN_TIMEOUT_MS = (RUN_SECONDS + 75) * 1000;
const PLANTED_RUN_SECONDS = 25;
/** Start (the 40 ms syncs slow the first segment's preallocation, ~20 s), 25 s of faults, then up to 30 s each for liveness, the final read, the watchers (beside convergence) and the replay, and a linearizability search that may run to its state limit. */
const ACK_PLANTED_TIMEOUT_MS = 300_000;
/** Seeds whose schedules aim power cuts at the leader within 25 s (405 two, 406 one); the second runs only if the first missed. */
const ACK_PLANTED_SEEDS = [405, 406];
const LOCK_WAIT_MS_MAX = 240_000;
/** Well above the healthy-phase floor the harness enforces itself: a run that barely moves proves little. */
const SUCCESSFUL_OPERATIONS_MIN = 500;

interface HarnessResult {
  readonly code: number | null;
  readonly output: string;
  readonly summary: RunSummary | null;
}

function runHarness(resultsRoot: string, args: readonly string[], timeoutMs: number): Promise<HarnessResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [HARNESS, "--results", resultsRoot, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString()));
    // SIGTERM lets the harness kill its members and delete its namespaces.
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const seed = args[args.indexOf("--seed") + 1];
      const runDirectory = existsSync(resultsRoot) ? readdirSync(resultsRoot).find((name) => name.endsWith(`-seed-${seed}`)) : undefined;
      const summaryPath = runDirectory === undefined ? "" : join(resultsRoot, runDirectory, "summary.json");
      const summary = summaryPath !== "" && existsSync(summaryPath) ? JSON.parse(readFileSync(summaryPath, "utf8")) as RunSummary : null;
      resolveRun({ code, output, summary });
    });
  });
}

describe("the fault-injection harness on a real cluster", () => {
  let resultsRoot = "";
  let failed = false;

  beforeAll(async () => {
    // Under the lock: parallel test files never compile into dist/ at once.
    await acquireClusterLock(LOCK_WAIT_MS_MAX);
    try {
      ensureBuilt();
    } finally {
      releaseClusterLock();
    }
    resultsRoot = mkdtempSync(join(tmpdir(), "cairn-faults-results-"));
  }, LOCK_WAIT_MS_MAX + 120_000);

  // One run at a time holds the process-test lock (test/integration/cluster.ts), so other process tests get turns between runs.
  beforeEach(() => acquireClusterLock(LOCK_WAIT_MS_MAX), LOCK_WAIT_MS_MAX + 10_000);
  afterEach(() => releaseClusterLock());

  afterAll(() => {
    // Kept on failure: the histories and member logs are what explains it.
    if (failed) process.stderr.write(`fault harness results kept in ${resultsRoot}\n`);
    else if (resultsRoot !== "") rmSync(resultsRoot, { recursive: true, force: true });
  });

  for (const seed of [101, 202]) {
    it(`passes every checker through ${RUN_SECONDS} s of kills, pauses and partitions (seed ${seed})`, async () => {
      const result = await runHarness(resultsRoot, ["--seed", String(seed), "--time", String(RUN_SECONDS), "--nemesis", "kill,pause,partition"], RUN_TIMEOUT_MS);
      if (result.code !== 0) failed = true;
      expect(result.code, result.output.slice(-6000)).toBe(0);
      const summary = result.summary;
      expect(summary, "the run wrote no summary.json").not.toBeNull();
      expect(summary?.valid).toBe(true);
      expect(summary?.problems).toEqual([]);
      expect(summary?.operations.ok).toBeGreaterThan(SUCCESSFUL_OPERATIONS_MIN);
      expect(Object.values(summary?.faults ?? {}).reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(3);
      expect(summary?.linearizability.keys).toBeGreaterThan(1);
      expect(summary?.durability.acknowledgedWrites).toBeGreaterThan(100);
      expect(summary?.watch.events).toBeGreaterThan(100);
      // The watcher held open through the faults saw the same history as the replay.
      expect(summary?.liveWatch.valid).toBe(true);
      expect(summary?.liveWatch.events).toBeGreaterThan(100);
    }, RUN_TIMEOUT_MS + 10_000);
  }

  it("reports a member that serves linearizable reads from local state (a planted bug) as not linearizable", async () => {
    const seed = 303;
    const result = await runHarness(resultsRoot, [
      "--seed", String(seed), "--time", String(PLANTED_RUN_SECONDS), "--nemesis", "partition,pause", "--planted-fault", "stale-reads",
    ], (PLANTED_RUN_SECONDS + 75) * 1000);
    if (result.code !== 1) failed = true;
    expect(result.code, result.output.slice(-6000)).toBe(1);
    expect(result.summary?.linearizability.valid).toBe(false);
    expect(result.summary?.linearizability.failures.length).toBeGreaterThan(0);
    // Each failure names its key and a window of the operations that cannot be ordered.
    expect(result.summary?.linearizability.failures[0]).toMatch(/not-linearizable — no order of these \d+ operations/);
    expect(result.output).toMatch(/FAIL seed 303/);
  }, (PLANTED_RUN_SECONDS + 85) * 1000);

  it("reports a cluster whose leader acknowledges writes before a quorum persisted them (a planted bug) as losing or corrupting data", async () => {
    // Power cuts (every member killed at once, unsynced WAL writes lost) with syncs 40 ms late; both seeds aim power
    // cuts at the leader, which then restarts seconds after the others: what it alone had acknowledged is gone. A cut
    // loses something only if it lands within a sync delay of an acknowledgement, so one 25 s run misses now and then
    // (1 of 10 runs that reached a verdict on 2026-11-27): the test allows a second seed, never a pass of both.
    const outcomes: string[] = [];
    let caught: HarnessResult | undefined;
    for (const seed of ACK_PLANTED_SEEDS) {
      const result = await runHarness(resultsRoot, [
        "--seed", String(seed), "--time", String(PLANTED_RUN_SECONDS), "--nemesis", "kill-all", "--planted-fault", "ack-before-quorum", "--sync-delay-ms", "40",
      ], ACK_PLANTED_TIMEOUT_MS);
      outcomes.push(`seed ${seed}: exit ${result.code}\n${result.output.slice(-3000)}`);
      // 0 is a miss; anything but 0 or 1 is a harness that could not run, which never counts as a catch.
      expect(result.code === 0 || result.code === 1, outcomes.join("\n")).toBe(true);
      if (result.code === 1) {
        caught = result;
        break;
      }
    }
    if (caught === undefined) failed = true;
    expect(caught, outcomes.join("\n")).toBeDefined();
    expect(caught?.summary?.faults["kill-all"]).toBeGreaterThanOrEqual(2);
    expect(caught?.summary?.valid).toBe(false);
    // Lost acknowledged writes show as missing watch events or durability violations; diverged members as
    // non-convergence or a stuck cluster; reads of lost values as non-linearizable histories.
    const dataProblems = (caught?.summary?.problems ?? []).filter((problem) => /^(linearizability|durability|watch|live watch|liveness): |did not converge/.test(problem));
    expect(dataProblems.length, (caught?.summary?.problems ?? []).join("\n")).toBeGreaterThan(0);
    expect(caught?.output).toMatch(/FAIL seed \d+: .* replay with: npm run faults -- --seed \d+ .*--planted-fault ack-before-quorum/);
  }, ACK_PLANTED_SEEDS.length * ACK_PLANTED_TIMEOUT_MS + 10_000);

  it("refuses bad arguments with a clear message and exit status 2", async () => {
    const result = await runHarness(resultsRoot, ["--seed", "1", "--nemesis", "flood"], 30_000);
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/unknown nemesis "flood"/);
    const nodes = await runHarness(resultsRoot, ["--seed", "1", "--nodes", "4"], 30_000);
    expect(nodes.code).toBe(2);
    expect(nodes.output).toMatch(/--nodes must be 3 or 5/);
  });
});
