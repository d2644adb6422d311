/**
 * `npm run faults -- [--seed S] [--time SECONDS] [--nemesis kill,pause,partition,slow,kill-all|all] [--nodes 3|5]
 *                    [--clients N] [--results DIR] [--sync-delay-ms MS] [--planted-fault NAME]`
 *
 * Attacks a real Cairn cluster the way Jepsen attacks etcd: builds a private
 * network of namespaces (network.ts), starts the members, runs many clients
 * (workload.ts) while the nemesis (nemesis.ts) kills, pauses, partitions
 * and slows members on a schedule drawn from the seed, heals everything,
 * checks that the cluster answers again (liveness), reads every key, replays
 * a watch from revision 1, and checks the history (check/), and what a
 * watcher held open through the faults saw (live-watch.ts). Everything lands
 * in <results>/<time>-seed-<S>/: history.jsonl (one operation or fault per
 * line), run.json (options and schedule), summary.json, the members' logs.
 *
 * Exit status: 0 the run passed; 1 a checker found a violation, or the run
 * proved nothing (too few operations succeeded in a healthy phase, or the
 * cluster did not come back); 2 the harness itself could not run.
 *
 * The process re-executes itself inside the hub namespace it created, so
 * its clients reach the members; the outer process only builds and removes
 * the network.
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { noop } from "cockatiel";
import { Client } from "../../src/client/mod.js";
import { Xoshiro128 } from "../../src/lib/prng.js";
import { checkDurability, type FinalValue } from "./check/durability.js";
import { mayHaveWritten, type Operation } from "./check/history.js";
import { checkLinearizable, formatVerdict } from "./check/linearizability.js";
import { checkWatch, type WatchEvent } from "./check/watch.js";
import { CLIENT_PORT, FaultCluster } from "./controller.js";
import { LiveWatcher } from "./live-watch.js";
import { faultKindsOf, planSchedule, performFault, type FaultRecord, type PlannedFault } from "./nemesis.js";
import { LinkControl, createTopology, destroyTopology, removeStaleTopologies, type Topology } from "./network.js";
import { KEY_PREFIX, Workload } from "./workload.js";

const REPOSITORY = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const TOPOLOGY_VARIABLE = "CAIRN_FAULTS_TOPOLOGY";
const NAMESPACE_PREFIX = "cf";

/** After a fault heals, time for elections and restarts before the phase counts as healthy. */
const HEAL_GRACE_MS = 3000;
const KILL_ALL_HEAL_GRACE_MS = 6000;
/** A healthy phase shorter than this is not judged. */
const HEALTHY_PHASE_MS_MIN = 1000;
/** Operations that must succeed in each healthy phase, or the run proves nothing. */
export const HEALTHY_PHASE_OPERATIONS_MIN = 10;
/** After the last heal, the cluster must accept a write within this bound. */
const LIVENESS_BOUND_MS = 30_000;
const FINAL_PHASE_MS = 5000;
const FINAL_READ_BOUND_MS = 30_000;
const WATCH_BOUND_MS = 30_000;
const CONVERGENCE_BOUND_MS = 20_000;
const FIRST_LEADER_BOUND_MS = 60_000;
const SYNC_DELAY_MS_DEFAULT = 10;

export interface RunOptions {
  readonly seed: number;
  readonly timeSeconds: number;
  readonly nemesis: readonly string[];
  readonly nodes: number;
  readonly clients: number;
  readonly resultsRoot: string;
  /** A planted bug for the harness's own tests: passed to every member as CAIRN_TEST_FAULT. */
  readonly plantedFault?: string;
  /** Each WAL sync starts this late (a slow disk), widening the window in which a kill loses unsynced writes. */
  readonly syncDelayMs: number;
}

export function parseArguments(argv: readonly string[]): RunOptions {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index++) {
    const name = argv[index];
    if (!name.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(name)}`);
    const value = argv[index + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`${name} needs a value`);
    values.set(name.slice(2), value);
    index++;
  }
  const known = new Set(["seed", "time", "nemesis", "nodes", "clients", "results", "planted-fault", "sync-delay-ms"]);
  for (const name of values.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}`);
  const integer = (name: string, fallback: number, low: number, high: number): number => {
    const text = values.get(name);
    const value = text === undefined ? fallback : Number(text);
    if (!Number.isSafeInteger(value) || value < low || value > high) throw new Error(`--${name} must be an integer in [${low}, ${high}], got ${text}`);
    return value;
  };
  const nodes = integer("nodes", 3, 3, 5);
  if (nodes !== 3 && nodes !== 5) throw new Error("--nodes must be 3 or 5");
  const nemesis = (values.get("nemesis") ?? "kill,pause,partition").split(",").map((name) => name.trim()).filter(Boolean);
  faultKindsOf(nemesis);
  return {
    seed: integer("seed", Date.now() % 1_000_000_000, 0, Number.MAX_SAFE_INTEGER),
    timeSeconds: integer("time", 60, 10, 86_400),
    nemesis,
    nodes,
    clients: integer("clients", 10, 1, 100),
    resultsRoot: resolve(values.get("results") ?? join(REPOSITORY, "results/faults")),
    plantedFault: values.get("planted-fault"),
    syncDelayMs: integer("sync-delay-ms", SYNC_DELAY_MS_DEFAULT, 0, 1000),
  };
}

export interface RunSummary {
  readonly seed: number;
  readonly resultsDir: string;
  readonly valid: boolean;
  readonly problems: readonly string[];
  readonly operations: { readonly ok: number; readonly fail: number; readonly unknown: number };
  readonly faults: Readonly<Record<string, number>>;
  readonly keys: number;
  readonly linearizability: { readonly valid: boolean; readonly keys: number; readonly failures: readonly string[]; readonly inconclusive: number; readonly checkMs: number };
  readonly durability: { readonly valid: boolean; readonly acknowledgedWrites: number; readonly violations: readonly string[] };
  readonly watch: { readonly valid: boolean; readonly events: number; readonly violations: readonly string[] };
  /** The watcher held open through the faults: its events checked like the replay's, and how often it had to move. */
  readonly liveWatch: {
    readonly valid: boolean; readonly events: number; readonly reconnects: number; readonly reconnectsByCause: Readonly<Record<string, number>>;
    readonly violations: readonly string[];
  };
  readonly healthyPhases: readonly { readonly startMs: number; readonly endMs: number; readonly ok: number }[];
  readonly livenessMs: number | null;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, Math.max(0, milliseconds)));
}

// ------------------------------------------------------------------ outer process

async function outer(options: RunOptions, argv: readonly string[]): Promise<number> {
  removeStaleTopologies(NAMESPACE_PREFIX);
  const topology = createTopology(`${NAMESPACE_PREFIX}${process.pid}`, options.nodes);
  try {
    // The seed is fixed here, so a run without --seed still names (and replays) one.
    const innerArguments = [...argv.filter((_, index) => argv[index] !== "--seed" && argv[index - 1] !== "--seed"), "--seed", String(options.seed)];
    const child = spawn("ip", ["netns", "exec", topology.hub, process.execPath, fileURLToPath(import.meta.url), ...innerArguments], {
      stdio: "inherit", env: { ...process.env, [TOPOLOGY_VARIABLE]: JSON.stringify(topology) },
    });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const code = await new Promise<number>((resolveExit) => child.once("exit", (exitCode, signal) => resolveExit(exitCode ?? (signal ? 2 : 0))));
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    return code;
  } finally {
    destroyTopology(topology);
  }
}

// ------------------------------------------------------------------ inner process (inside the hub namespace)

/** What every verdict is written with, whichever checks could run. */
interface RunRecord {
  readonly options: RunOptions;
  readonly resultsDir: string;
  readonly log: (line: string) => void;
  readonly operations: RunSummary["operations"];
  readonly keys: number;
  readonly faults: readonly FaultRecord[];
  readonly phases: ReturnType<typeof healthyPhases>;
  readonly livenessMs: number | null;
}

/** Runs the linearizability checker; its failures and inconclusive keys become problems. */
function checkedLinearizability(operations: readonly Operation[], problems: string[]): RunSummary["linearizability"] {
  const checkStarted = performance.now();
  const linearizability = checkLinearizable(operations);
  const checkMs = performance.now() - checkStarted;
  for (const failure of linearizability.failures) problems.push(`linearizability: ${formatVerdict(failure)}`);
  for (const verdict of linearizability.inconclusive) problems.push(`linearizability: key ${verdict.key} inconclusive after ${verdict.statesExplored} states`);
  return { valid: linearizability.valid, keys: linearizability.keys.length, failures: linearizability.failures.map(formatVerdict), inconclusive: linearizability.inconclusive.length, checkMs: Math.round(checkMs) };
}

/** Writes summary.json and the verdict; returns the exit status (0 pass, 1 fail). */
function conclude(run: RunRecord, problems: readonly string[], checks: Pick<RunSummary, "linearizability" | "durability" | "watch" | "liveWatch">): number {
  const faultCounts: Record<string, number> = {};
  for (const fault of run.faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
  const summary: RunSummary = {
    seed: run.options.seed, resultsDir: run.resultsDir, valid: problems.length === 0, problems, operations: { ...run.operations }, faults: faultCounts,
    keys: run.keys, ...checks,
    healthyPhases: run.phases.map((phase) => ({ startMs: Math.round(phase.startMs), endMs: Math.round(phase.endMs), ok: phase.ok })),
    livenessMs: run.livenessMs,
  };
  writeFileSync(join(run.resultsDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  if (problems.length === 0) {
    run.log(`PASS seed ${run.options.seed}`);
    return 0;
  }
  for (const problem of problems.slice(0, 20)) run.log(`VIOLATION ${problem}`);
  run.log(`FAIL seed ${run.options.seed}: ${problems.length} problems; replay with: ${replayCommand(run.options)}`);
  return 1;
}

function replayCommand(options: RunOptions): string {
  const planted = options.plantedFault ? ` --planted-fault ${options.plantedFault}` : "";
  return `npm run faults -- --seed ${options.seed} --time ${options.timeSeconds} --nemesis ${options.nemesis.join(",")} --nodes ${options.nodes} --clients ${options.clients} --sync-delay-ms ${options.syncDelayMs}${planted}`;
}

async function finalRead(endpoints: readonly string[], keys: readonly string[]): Promise<{ values: Map<string, FinalValue>; revision: number }> {
  const client = new Client({ endpoints: [...endpoints], commandTimeoutMs: 3000 });
  const deadline = Date.now() + FINAL_READ_BOUND_MS;
  try {
    while (true) {
      try {
        const response = await client.kv.get(KEY_PREFIX, { prefix: true });
        const values = new Map<string, FinalValue>(keys.map((key) => [key, { value: null, modRevision: 0 }]));
        for (const kv of response.kvs) values.set(new TextDecoder().decode(kv.key), { value: new TextDecoder().decode(kv.value), modRevision: kv.modRevision });
        return { values, revision: response.header?.revision ?? 0 };
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`no final read within ${FINAL_READ_BOUND_MS} ms: ${(error as Error).message}`);
        await sleep(200);
      }
    }
  } finally {
    await client.close();
  }
}

/**
 * Every member must come to hold exactly what the final read showed: a
 * serializable read of the run's keys on each member, polled until it
 * matches. A member whose state machine diverged (applied an entry the
 * others do not have) never matches.
 */
async function checkConvergence(endpoints: readonly string[], final: ReadonlyMap<string, FinalValue>): Promise<string[]> {
  const expected = JSON.stringify([...final].filter(([, value]) => value.value !== null).sort(([a], [b]) => (a < b ? -1 : 1)));
  const problems: string[] = [];
  await Promise.all(endpoints.map(async (endpoint) => {
    const client = new Client({ endpoints: [endpoint], commandTimeoutMs: 2000 });
    const deadline = Date.now() + CONVERGENCE_BOUND_MS;
    let last = "no answer";
    try {
      while (Date.now() < deadline) {
        try {
          const response = await client.kv.get(KEY_PREFIX, { prefix: true, serializable: true });
          const seen = JSON.stringify(response.kvs.map((kv) => [new TextDecoder().decode(kv.key), { value: new TextDecoder().decode(kv.value), modRevision: kv.modRevision }]));
          if (seen === expected) return;
          last = `${response.kvs.length} keys, differing`;
        } catch (error) {
          last = (error as Error).message;
        }
        await sleep(250);
      }
      problems.push(`member ${endpoint} did not converge to the final state within ${CONVERGENCE_BOUND_MS} ms (${last})`);
    } finally {
      await client.close();
    }
  }));
  return problems;
}

/** Settles like `promise`, or rejects with `message` after `milliseconds`: a broken cluster must not hang the checks. */
function bounded<T>(promise: Promise<T>, milliseconds: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), milliseconds)));
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

/** Replays a watch from revision 1 over the run's prefix until it reaches `revision`. */
async function watchFromStart(endpoints: readonly string[], revision: number): Promise<WatchEvent[]> {
  const client = new Etcd3({ hosts: endpoints.map((endpoint) => `http://${endpoint}`), dialTimeout: 2000, faultHandling: { host: () => noop, global: noop } });
  const events: WatchEvent[] = [];
  try {
    // Opening (and below, cancelling) waits on the cluster: bounded, so a cluster that stopped serving watches fails
    // the watch check (the replay falls short of the final revision) instead of hanging the run.
    const watcher = await bounded(client.watch().prefix(KEY_PREFIX).startRevision("1").create(), WATCH_BOUND_MS, `the replay watch did not open within ${WATCH_BOUND_MS} ms`)
      .catch(() => null);
    if (watcher === null) return events;
    const deadline = Date.now() + WATCH_BOUND_MS;
    let last = 1;
    watcher.on("data", (response) => {
      for (const event of response.events) {
        const eventRevision = Number(event.kv.mod_revision);
        last = Math.max(last, eventRevision);
        events.push({
          type: event.type === "Put" ? "put" : "delete", key: event.kv.key.toString(), revision: eventRevision,
          ...(event.type === "Put" ? { value: event.kv.value.toString() } : {}),
        });
      }
    });
    while (last < revision && Date.now() < deadline) await sleep(100);
    await bounded(watcher.cancel(), 5000, "the replay watch did not cancel").catch(() => undefined);
  } finally {
    client.close();
  }
  return events;
}

async function awaitLiveness(endpoints: readonly string[]): Promise<number | null> {
  const client = new Client({ endpoints: [...endpoints], commandTimeoutMs: 2000 });
  const started = Date.now();
  try {
    while (Date.now() - started < LIVENESS_BOUND_MS) {
      try {
        await client.kv.put("faults-liveness", String(started));
        return Date.now() - started;
      } catch {
        await sleep(200);
      }
    }
    return null;
  } finally {
    await client.close();
  }
}

function healthyPhases(faults: readonly FaultRecord[], runStartMs: number, faultPhaseEndMs: number, finalEndMs: number, operations: readonly Operation[]) {
  const windows: { startMs: number; endMs: number }[] = [];
  let from = runStartMs + HEAL_GRACE_MS;
  for (const fault of faults) {
    windows.push({ startMs: from, endMs: fault.startMs });
    from = fault.endMs + (fault.kind === "kill-all" ? KILL_ALL_HEAL_GRACE_MS : HEAL_GRACE_MS);
  }
  windows.push({ startMs: from, endMs: faultPhaseEndMs });
  windows.push({ startMs: faultPhaseEndMs, endMs: finalEndMs });
  return windows.filter((window) => window.endMs - window.startMs >= HEALTHY_PHASE_MS_MIN).map((window) => ({
    ...window,
    ok: operations.filter((operation) => operation.outcome === "ok" && operation.startMs >= window.startMs && operation.endMs <= window.endMs).length,
  }));
}

async function inner(options: RunOptions, topology: Topology): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const resultsDir = join(options.resultsRoot, `${stamp}-seed-${options.seed}`);
  mkdirSync(resultsDir, { recursive: true });
  const dataRoot = mkdtempSync(join(tmpdir(), "cairn-faults-"));
  const historyFile = join(resultsDir, "history.jsonl");
  const log = (line: string): void => void process.stdout.write(`[faults +${((performance.now() - clockZero) / 1000).toFixed(1)}s] ${line}\n`);
  const clockZero = performance.now();
  const now = (): number => performance.now() - clockZero;
  const random = new Xoshiro128(options.seed);
  const scheduleRandom = random.fork();
  const faultRandom = random.fork();
  const clientRandom = random.fork();
  const watchRandom = random.fork();
  const faultPhaseMs = options.timeSeconds * 1000;
  const schedule: PlannedFault[] = planSchedule(scheduleRandom, { kinds: faultKindsOf(options.nemesis), faultPhaseMs, size: options.nodes });
  writeFileSync(join(resultsDir, "run.json"), JSON.stringify({ options, topology, schedule }, null, 2) + "\n");
  log(`seed ${options.seed}, ${options.nodes} members, ${options.timeSeconds} s of faults (${options.nemesis.join(",")}): ${schedule.length} faults planned; results in ${resultsDir}`);

  const links = new LinkControl(options.nodes);
  // Every kill acts as a power cut: WAL writes no fdatasync covered are lost (src/server/test-switches.ts).
  const memberEnvironment: Record<string, string> = { CAIRN_TEST_POWER_CUT: "1", CAIRN_TEST_SYNC_DELAY_MS: String(options.syncDelayMs) };
  if (options.plantedFault !== undefined) memberEnvironment.CAIRN_TEST_FAULT = options.plantedFault;
  const cluster = new FaultCluster({
    topology, resultsDir, dataRoot, heartbeatIntervalMs: 100, electionTimeoutMs: 1000, memberEnvironment, log,
  });
  const operations: Operation[] = [];
  const faults: FaultRecord[] = [];
  const problems: string[] = [];
  const endpoints = cluster.members.map((member) => `${member.address}:${CLIENT_PORT}`);
  let liveWatcher: LiveWatcher | undefined;
  try {
    cluster.startAll();
    const firstLeader = await cluster.waitForLeader(FIRST_LEADER_BOUND_MS);
    log(`leader ${firstLeader.name}; starting ${options.clients} clients`);
    // The newest revision any client was told about: a member the live watcher follows must soon deliver it.
    let acknowledgedRevision = 0;
    const workload = new Workload({
      clients: options.clients, endpoints, operationTimeoutMs: 2000, liveKeys: 5, operationsPerKeyMax: 250, thinkTimeMsMax: 20,
      random: clientRandom, now,
      record: (operation) => {
        operations.push(operation);
        if (operation.outcome === "ok" && operation.revision !== undefined) acknowledgedRevision = Math.max(acknowledgedRevision, operation.revision);
        appendFileSync(historyFile, JSON.stringify({ type: "operation", ...operation }) + "\n");
      },
    });
    liveWatcher = new LiveWatcher({
      endpoints, prefix: KEY_PREFIX, random: watchRandom, now, acknowledgedRevision: () => acknowledgedRevision, log,
      recordStream: (stream) => appendFileSync(historyFile, JSON.stringify({ type: "watch-stream", ...stream }) + "\n"),
    });
    const runStartMs = now();
    liveWatcher.start();
    workload.start();
    for (const fault of schedule) {
      await sleep(runStartMs + fault.atMs - now());
      const record = await performFault(fault, cluster, links, faultRandom, now);
      faults.push(record);
      appendFileSync(historyFile, JSON.stringify({ type: "fault", ...record }) + "\n");
      log(`${record.description} (${record.kind})`);
    }
    await sleep(runStartMs + faultPhaseMs - now());
    // Everything healed before the final phase, whatever the schedule left.
    links.healAll();
    for (const member of cluster.members) {
      cluster.resume(member);
      if (!member.running) cluster.start(member);
    }
    const faultPhaseEndMs = now();
    const livenessMs = await awaitLiveness(endpoints);
    if (livenessMs === null) problems.push(`liveness: no write succeeded within ${LIVENESS_BOUND_MS} ms of the final heal`);
    else log(`liveness: a write succeeded ${livenessMs} ms after the final heal`);
    await sleep(FINAL_PHASE_MS);
    await workload.stop();
    const finalEndMs = now();
    log(`clients stopped: ${workload.counts.ok} ok, ${workload.counts.unknown} unknown, ${workload.counts.fail} failed; ${workload.keysUsed.length} keys`);

    const phases = healthyPhases(faults, runStartMs, faultPhaseEndMs, finalEndMs, operations);
    for (const phase of phases) {
      if (phase.ok < HEALTHY_PHASE_OPERATIONS_MIN) {
        problems.push(`only ${phase.ok} operations succeeded in the healthy phase ${(phase.startMs / 1000).toFixed(1)}-${(phase.endMs / 1000).toFixed(1)} s (at least ${HEALTHY_PHASE_OPERATIONS_MIN} required)`);
      }
    }
    const run: RunRecord = { options, resultsDir, log, operations: workload.counts, keys: workload.keysUsed.length, faults, phases, livenessMs };
    let final: Awaited<ReturnType<typeof finalRead>>;
    try {
      final = await finalRead(endpoints, workload.keysUsed);
    } catch (error) {
      // The cluster did not come back: a liveness violation (exit 1), not a harness failure. The checks that need a
      // final read cannot run; linearizability can, on the history as it stands.
      problems.push(`liveness: the cluster served no final read after the final heal (${(error as Error).message}); durability, convergence and watch checks skipped`);
      const skipped = ["skipped: no final read"];
      const acknowledgedWrites = operations.filter((operation) => operation.outcome === "ok" && mayHaveWritten(operation)).length;
      return conclude(run, problems, {
        linearizability: checkedLinearizability(operations, problems),
        durability: { valid: false, acknowledgedWrites, violations: skipped },
        watch: { valid: false, events: 0, violations: skipped },
        liveWatch: { valid: false, events: 0, reconnects: 0, reconnectsByCause: {}, violations: skipped },
      });
    }
    acknowledgedRevision = Math.max(acknowledgedRevision, final.revision);
    // Side by side: on a broken cluster both wait out their bounds, and one after the other they would push the run
    // past the time a caller allows it (the planted ack-before-quorum run in CI).
    const live = liveWatcher;
    const [, convergence] = await Promise.all([
      live.waitForRevision(final.revision, WATCH_BOUND_MS).then(() => live.stop()),
      checkConvergence(endpoints, final.values),
    ]);
    problems.push(...convergence);
    for (const member of cluster.members) problems.push(...member.unexpectedExits);
    const linearizability = checkedLinearizability(operations, problems);
    const durability = checkDurability(operations, final.values);
    const events = await watchFromStart(endpoints, final.revision);
    // Not contiguous: the liveness probe writes outside the prefix.
    const watch = checkWatch(events, operations, final.values, { finalRevision: final.revision, contiguous: false });
    const liveEvents = checkWatch(liveWatcher.progress.events, operations, final.values, { finalRevision: final.revision, contiguous: false });
    const liveViolations = [...liveWatcher.violations, ...liveEvents.violations.map((violation) => violation.message)];
    for (const violation of durability.violations) problems.push(`durability: ${violation.message}`);
    for (const violation of watch.violations) problems.push(`watch: ${violation.message}`);
    for (const violation of liveViolations) problems.push(`live watch: ${violation}`);
    log(`checked ${operations.length} operations on ${linearizability.keys} keys in ${linearizability.checkMs} ms; ${durability.acknowledgedWrites} acknowledged writes; ${watch.events} watch events`);
    const causes = Object.entries(liveWatcher.reconnectsByCause).map(([cause, count]) => `${cause} ${count}`).join(", ");
    log(`live watcher: ${liveEvents.events} events through the faults, ${liveWatcher.reconnects} reconnects${causes === "" ? "" : ` (${causes})`}; ${liveViolations.length === 0 ? "valid" : `${liveViolations.length} violations`}`);
    return conclude(run, problems, {
      linearizability,
      durability: { valid: durability.valid, acknowledgedWrites: durability.acknowledgedWrites, violations: durability.violations.map((violation) => violation.message) },
      watch: { valid: watch.valid, events: watch.events, violations: watch.violations.map((violation) => violation.message) },
      liveWatch: {
        valid: liveViolations.length === 0, events: liveEvents.events, reconnects: liveWatcher.reconnects,
        reconnectsByCause: { ...liveWatcher.reconnectsByCause }, violations: liveViolations,
      },
    });
  } finally {
    await liveWatcher?.stop();
    links.healAll();
    await cluster.stopAll();
    for (const member of cluster.members) member.closeStatusClient();
    rmSync(dataRoot, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let options: RunOptions;
  try {
    options = parseArguments(argv);
  } catch (error) {
    process.stderr.write(`faults: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const topology = process.env[TOPOLOGY_VARIABLE];
    return topology === undefined ? await outer(options, argv) : await inner(options, JSON.parse(topology) as Topology);
  } catch (error) {
    process.stderr.write(`faults: the harness could not run: ${(error as Error).stack ?? String(error)}\n`);
    return 2;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Exit explicitly: a client's reconnect timer must not keep a finished run alive.
  process.exit(await main());
}
