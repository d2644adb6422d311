/**
 * `npm run bench -- server [--json] [--duration-ms 10000] [--warm-up-ms 2000]
 *   [--in-flight 64] [--value-bytes 256] [--clients 2] [--keyspace 100000]
 *   [--systems cairn,etcd]`
 *
 * The side-by-side figure of issue 4: Put with fixed-size values, a fixed
 * number of requests in flight, sent to the leader of a 3-member Cairn
 * cluster and then of a 3-member etcd cluster (Debian's etcd-server,
 * installed when absent), never both at once, driven by the same lean
 * HTTP/2 load generator in separate processes. Per system it prints puts/s,
 * p50/p99 latency, server CPU per put (utime + stime of the three members
 * from /proc, over the measured window), the load generator's CPU per put
 * and share, and how much CPU other work on the machine took meanwhile; then
 * the Cairn/etcd ratios. The table is Markdown, for docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchContext, Row } from "./common.js";
import { Cluster, type SystemName } from "./server/cluster.js";
import { VALUE_BYTES_MAX } from "./server/grpc-wire.js";
import type { WorkerOptions } from "./server/load-worker.js";
import { LoadWorkers, type LoadTotals } from "./server/load-workers.js";
import { clockTicksPerSecond, machineCpuTicks, processCpuMicros } from "./server/proc-cpu.js";

export class ServerBenchError extends Error {
  override name = "ServerBenchError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const LEADER_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const DURATION_MS_MAX = 10 * 60_000;
const IN_FLIGHT_MAX = 4096;
const CLIENTS_MAX = 8;
const KEYSPACE_MAX = 10_000_000;
/** Workers exit by themselves this long after their planned end, should the parent hang. */
const WORKER_LIFETIME_SLACK_MS = 120_000;
/** Above this a load process is close to saturating its core. */
const CLIENT_CORES_PER_PROCESS_WARNING = 0.8;

interface Settings {
  durationMs: number;
  warmUpMs: number;
  inFlight: number;
  valueBytes: number;
  clients: number;
  keyspace: number;
  systems: SystemName[];
}

interface Measurement {
  system: SystemName;
  version: string;
  totals: LoadTotals;
  serverCpuMicros: number;
  clientCpuMicros: number;
  machineBusyMicros: number;
  leaderName: string;
  termBefore: number;
  termAfter: number;
  leaderAfter: string;
  abandoned: number;
}

function integerOption(context: BenchContext, name: string, fallback: number, minimum: number, maximum: number): number {
  const text = context.option(name, String(fallback));
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw new ServerBenchError(`--${name} must be an integer in ${minimum}..${maximum}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function readSettings(context: BenchContext): Settings {
  const systems = context.option("systems", "cairn,etcd").split(",").filter((name) => name !== "");
  for (const system of systems) {
    if (system !== "cairn" && system !== "etcd") throw new ServerBenchError(`--systems takes cairn and/or etcd, got ${JSON.stringify(system)}`);
  }
  if (systems.length === 0) throw new ServerBenchError("--systems names no system");
  const settings: Settings = {
    durationMs: integerOption(context, "duration-ms", 10_000, 100, DURATION_MS_MAX),
    warmUpMs: integerOption(context, "warm-up-ms", 2000, 0, DURATION_MS_MAX),
    inFlight: integerOption(context, "in-flight", 64, 1, IN_FLIGHT_MAX),
    valueBytes: integerOption(context, "value-bytes", 256, 1, VALUE_BYTES_MAX),
    clients: integerOption(context, "clients", 2, 1, CLIENTS_MAX),
    keyspace: integerOption(context, "keyspace", 100_000, 1, KEYSPACE_MAX),
    systems: systems as SystemName[],
  };
  if (settings.clients > settings.inFlight) throw new ServerBenchError(`--clients (${settings.clients}) cannot exceed --in-flight (${settings.inFlight})`);
  if (settings.clients > settings.keyspace) throw new ServerBenchError(`--clients (${settings.clients}) cannot exceed --keyspace (${settings.keyspace})`);
  return settings;
}

function commandWorks(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: "ignore", timeout: 10_000 }).status === 0;
}

/** Installs Debian's etcd-server when `etcd` is missing, and stops the package's own service if it runs. */
function ensureEtcd(context: BenchContext): string {
  if (!commandWorks("etcd", ["--version"])) {
    context.note("etcd is absent: installing Debian's etcd-server");
    const install = () => spawnSync("apt-get", ["install", "-y", "etcd-server"], {
      encoding: "utf8", timeout: INSTALL_TIMEOUT_MS, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    let result = install();
    if (result.status !== 0) {
      spawnSync("apt-get", ["update"], { encoding: "utf8", timeout: INSTALL_TIMEOUT_MS });
      result = install();
    }
    if (result.status !== 0 || !commandWorks("etcd", ["--version"])) {
      throw new ServerBenchError(`apt-get install -y etcd-server failed (exit ${result.status}): ${(result.stderr ?? "").slice(-2000)}`);
    }
  }
  // The package enables a default member on 2379/2380; the benchmark runs its own members on other ports,
  // but a running default member would still eat CPU during the measurement.
  if (commandWorks("systemctl", ["is-active", "--quiet", "etcd"])) {
    context.note("stopping the etcd-server package's own service (systemctl stop etcd)");
    spawnSync("systemctl", ["stop", "etcd"], { stdio: "ignore", timeout: 60_000 });
  }
  const versionLine = execFileSync("etcd", ["--version"], { encoding: "utf8", timeout: 10_000 }).split("\n")[0] ?? "";
  return versionLine.replace(/^etcd Version:\s*/, "etcd ");
}

function cairnVersion(): string {
  try {
    return `cairn ${execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8", timeout: 10_000 }).trim()}`;
  } catch {
    return "cairn (commit unknown)";
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Splits `total` into `parts` near-equal positive shares. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

/** Everything that must die if the benchmark is interrupted: killed synchronously on exit and on signals. */
const live = new Set<{ killNow(): void }>();

async function measure(system: SystemName, version: string, root: string, settings: Settings, ticksPerSecond: number, context: BenchContext): Promise<Measurement> {
  const cluster = await Cluster.start(system, join(root, system));
  live.add(cluster);
  let workers: LoadWorkers | undefined;
  try {
    const { leader, status: before } = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    context.note(`${system}: leader ${leader.name} (term ${before.raftTerm}); ${settings.clients} load process(es), ${settings.inFlight} in flight`);
    const inFlights = split(settings.inFlight, settings.clients);
    const keyCounts = split(settings.keyspace, settings.clients);
    const options: WorkerOptions[] = inFlights.map((inFlight, index) => ({
      port: leader.clientPort,
      inFlight,
      valueBytes: settings.valueBytes,
      firstKey: keyCounts.slice(0, index).reduce((sum, count) => sum + count, 0),
      keyCount: keyCounts[index],
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      lifetimeMsMax: settings.warmUpMs + settings.durationMs + WORKER_LIFETIME_SLACK_MS,
    }));
    workers = await LoadWorkers.start(options);
    live.add(workers);
    await workers.go();
    await sleep(settings.warmUpMs);
    const serverPids = cluster.pids();
    const clientPids = workers.pids();
    const serverBefore = processCpuMicros(serverPids, ticksPerSecond);
    const clientBefore = processCpuMicros(clientPids, ticksPerSecond);
    const machineBefore = machineCpuTicks();
    await workers.mark();
    await sleep(settings.durationMs);
    const totals = await workers.report();
    if (totals.errors.size > 0 || totals.completed === 0) {
      process.stderr.write(`${system}: ${totals.completed} puts acknowledged in the window, errors by kind:\n`);
      for (const [kind, count] of totals.errors) process.stderr.write(`  ${count}× ${kind}\n`);
    }
    // Names the member that died, if one did, before its vanished /proc entry would.
    cluster.pids();
    const serverAfter = processCpuMicros(serverPids, ticksPerSecond);
    const clientAfter = processCpuMicros(clientPids, ticksPerSecond);
    const machineAfter = machineCpuTicks();
    const abandoned = await workers.stop();
    const after = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    if (totals.errors.size > 0 || totals.completed === 0) process.stderr.write(cluster.logTails() + "\n");
    return {
      system, version, totals, abandoned,
      serverCpuMicros: serverAfter - serverBefore,
      clientCpuMicros: clientAfter - clientBefore,
      machineBusyMicros: ((machineAfter.busy - machineBefore.busy) * 1_000_000) / ticksPerSecond,
      leaderName: leader.name,
      termBefore: before.raftTerm,
      termAfter: after.status.raftTerm,
      leaderAfter: after.leader.name,
    };
  } catch (error) {
    process.stderr.write(`${system} failed: ${(error as Error).message}\n${cluster.logTails()}\n`);
    throw error;
  } finally {
    if (workers !== undefined) {
      workers.killNow();
      live.delete(workers);
    }
    await cluster.stop();
    live.delete(cluster);
  }
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

function row(result: Measurement, settings: Settings): Row {
  const operations = Math.max(1, result.totals.completed);
  const seconds = result.totals.elapsedMs / 1000;
  const errors = [...result.totals.errors.values()].reduce((sum, count) => sum + count, 0);
  const otherCpuMicros = Math.max(0, result.machineBusyMicros - result.serverCpuMicros - result.clientCpuMicros);
  return {
    system: result.version,
    "puts/s": Math.round(result.totals.completed / seconds),
    "p50 ms": result.totals.histogram.quantileMs(0.5),
    "p99 ms": result.totals.histogram.quantileMs(0.99),
    "server CPU µs/put": round(result.serverCpuMicros / operations, 1),
    "client CPU µs/put": round(result.clientCpuMicros / operations, 1),
    "client share of CPU": round(result.clientCpuMicros / Math.max(1, result.clientCpuMicros + result.serverCpuMicros), 3),
    "client cores/process": round(result.clientCpuMicros / (result.totals.elapsedMs * 1000 * settings.clients), 2),
    "other work, cores": round(otherCpuMicros / (result.totals.elapsedMs * 1000), 2),
    puts: result.totals.completed,
    errors,
    "leader, term": result.leaderAfter === result.leaderName && result.termAfter === result.termBefore
      ? `${result.leaderName}, ${result.termBefore}`
      : `${result.leaderName}, ${result.termBefore} → ${result.leaderAfter}, ${result.termAfter}`,
  };
}

function ratioRow(cairn: Row, etcd: Row): Row {
  const ratio = (column: string): number | null => {
    const numerator = cairn[column];
    const denominator = etcd[column];
    return typeof numerator === "number" && typeof denominator === "number" && denominator !== 0 ? round(numerator / denominator, 2) : null;
  };
  return {
    system: "Cairn / etcd",
    "puts/s": ratio("puts/s"),
    "p50 ms": ratio("p50 ms"),
    "p99 ms": ratio("p99 ms"),
    "server CPU µs/put": ratio("server CPU µs/put"),
    "client CPU µs/put": ratio("client CPU µs/put"),
  };
}

export async function run(context: BenchContext): Promise<void> {
  const settings = readSettings(context);
  const ticksPerSecond = clockTicksPerSecond();
  const versions = new Map<SystemName, string>();
  if (settings.systems.includes("etcd")) versions.set("etcd", ensureEtcd(context));
  versions.set("cairn", cairnVersion());
  context.note([
    `Put, ${settings.valueBytes}-byte values, ${settings.keyspace} distinct keys round robin, ${settings.inFlight} in flight to the leader`,
    `of a 3-member cluster on loopback; ${settings.clients} load process(es) (node:http2, one connection each);`,
    `${settings.warmUpMs} ms warm-up, then ${settings.durationMs} ms measured per system, one system at a time.`,
    `CPU from /proc (utime+stime, ${ticksPerSecond} ticks/s). "other work" is the rest of the machine's busy CPU meanwhile.`,
  ].join("\n"));
  const root = mkdtempSync(join(tmpdir(), "cairn-bench-server-"));
  const emergencyCleanup = (): void => {
    for (const thing of live) thing.killNow();
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    emergencyCleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", emergencyCleanup);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const rows = new Map<SystemName, Row>();
  const failures: string[] = [];
  try {
    for (const system of settings.systems) {
      try {
        const result = await measure(system, versions.get(system) ?? system, root, settings, ticksPerSecond, context);
        const resultRow = row(result, settings);
        rows.set(system, resultRow);
        if (result.abandoned > 0) process.stderr.write(`${system}: ${result.abandoned} requests were still unanswered when the load processes stopped\n`);
        if (Number(resultRow["client cores/process"]) > CLIENT_CORES_PER_PROCESS_WARNING) {
          context.note(`${system}: the load processes were ${resultRow["client cores/process"]} cores busy each: the load generator may be the bottleneck; try more --clients`);
        }
      } catch (error) {
        failures.push(`${system}: ${(error as Error).message}`);
        rows.set(system, { system: versions.get(system) ?? system, "puts/s": null, errors: `failed: ${(error as Error).message}` });
      }
    }
  } finally {
    emergencyCleanup();
    process.off("exit", emergencyCleanup);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  for (const value of rows.values()) context.report(value);
  const cairn = rows.get("cairn");
  const etcd = rows.get("etcd");
  if (cairn !== undefined && etcd !== undefined) context.report(ratioRow(cairn, etcd));
  if (failures.length > 0) process.exitCode = 1;
}
