/**
 * `npm run bench -- compaction [--json] [--revisions 1000000] [--keyspace 1000]
 *   [--in-flight 64] [--value-bytes 256] [--clients 2] [--baseline-ms 10000]`
 *
 * Put latency while a compaction of a long history runs, beside put latency
 * without one, on a 3-member Cairn cluster on loopback. The same lean load
 * generator as `bench -- server` keeps `--in-flight` Puts outstanding on the
 * leader over `--keyspace` keys round robin until the store's revision
 * reaches `--revisions` (so nearly every revision is an old version that a
 * compaction removes). With the load still running it then measures a window
 * of `--baseline-ms` without compaction, and a window from sending
 * Compact(revision = current, physical) until its answer (Cairn answers a
 * physical compaction once the history is physically gone). Rows: puts/s,
 * p50/p99/p99.9 and the window length.
 */
import type http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchContext, Row } from "./common.js";
import { Cluster } from "./server/cluster.js";
import { callUnary, COMPACT_PATH, compactionRequest, connect, VALUE_BYTES_MAX } from "./server/grpc-wire.js";
import type { WorkerOptions } from "./server/load-worker.js";
import { LoadWorkers, type LoadTotals } from "./server/load-workers.js";

export class CompactionBenchError extends Error {
  override name = "CompactionBenchError";
}

const LEADER_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
const REVISIONS_MAX = 100_000_000;
const FILL_POLL_MS = 1000;
/** The fill must make progress: a stalled cluster ends the benchmark instead of hanging it. */
const FILL_STALL_MS_MAX = 60_000;
const COMPACTION_TIMEOUT_MS = 30 * 60_000;
const WORKER_LIFETIME_MS_MAX = 4 * 60 * 60_000;

interface Settings {
  revisions: number;
  keyspace: number;
  inFlight: number;
  valueBytes: number;
  clients: number;
  baselineMs: number;
}

function integerOption(context: BenchContext, name: string, fallback: number, minimum: number, maximum: number): number {
  const text = context.option(name, String(fallback));
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw new CompactionBenchError(`--${name} must be an integer in ${minimum}..${maximum}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function readSettings(context: BenchContext): Settings {
  const settings: Settings = {
    revisions: integerOption(context, "revisions", 1_000_000, 1000, REVISIONS_MAX),
    keyspace: integerOption(context, "keyspace", 1000, 1, 10_000_000),
    inFlight: integerOption(context, "in-flight", 64, 1, 4096),
    valueBytes: integerOption(context, "value-bytes", 256, 1, VALUE_BYTES_MAX),
    clients: integerOption(context, "clients", 2, 1, 8),
    baselineMs: integerOption(context, "baseline-ms", 10_000, 1000, 10 * 60_000),
  };
  if (settings.clients > settings.inFlight || settings.clients > settings.keyspace) {
    throw new CompactionBenchError("--clients cannot exceed --in-flight or --keyspace");
  }
  return settings;
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits: number): number => Number(value.toFixed(digits));

function row(window: string, totals: LoadTotals): Row {
  const errors = [...totals.errors.values()].reduce((sum, count) => sum + count, 0);
  return {
    window,
    "window s": round(totals.elapsedMs / 1000, 1),
    "puts/s": Math.round(totals.completed / (totals.elapsedMs / 1000)),
    "p50 ms": totals.histogram.quantileMs(0.5),
    "p99 ms": totals.histogram.quantileMs(0.99),
    "p99.9 ms": totals.histogram.quantileMs(0.999),
    puts: totals.completed,
    errors,
  };
}

/** Waits until the leader's store reaches `revisions`, noting progress; fails on a stall. */
async function fill(cluster: Cluster, settings: Settings, context: BenchContext): Promise<number> {
  const started = performance.now();
  let last = { revision: 0, atMs: started };
  let lastNoteMs = started;
  for (;;) {
    const { status } = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    const now = performance.now();
    if (status.revision >= settings.revisions) {
      context.note(`filled ${status.revision} revisions in ${((now - started) / 1000).toFixed(0)} s (${Math.round(status.revision / ((now - started) / 1000))} puts/s)`);
      return status.revision;
    }
    if (status.revision > last.revision) last = { revision: status.revision, atMs: now };
    else if (now - last.atMs > FILL_STALL_MS_MAX) throw new CompactionBenchError(`the revision stayed at ${last.revision} for ${FILL_STALL_MS_MAX} ms while filling`);
    if (now - lastNoteMs > 30_000) {
      context.note(`  ... revision ${status.revision} of ${settings.revisions}`);
      lastNoteMs = now;
    }
    await sleep(FILL_POLL_MS);
  }
}

async function compact(port: number, revision: number): Promise<void> {
  let session: http2.ClientHttp2Session | undefined;
  try {
    session = await connect(port, REQUEST_TIMEOUT_MS);
    const answer = await callUnary(session, COMPACT_PATH, compactionRequest(revision, true), COMPACTION_TIMEOUT_MS);
    if (answer.grpcStatus !== "0") throw new CompactionBenchError(`Compact(${revision}) answered grpc status ${answer.grpcStatus}: ${answer.grpcMessage}`);
  } finally {
    session?.destroy();
  }
}

export async function run(context: BenchContext): Promise<void> {
  const settings = readSettings(context);
  context.note([
    `Put, ${settings.valueBytes}-byte values over ${settings.keyspace} keys round robin, ${settings.inFlight} in flight to the leader of a`,
    `3-member Cairn cluster on loopback (${settings.clients} load process(es)), filled to ${settings.revisions} revisions;`,
    `then, load still running: ${settings.baselineMs} ms without compaction, and the whole of a physical Compact at the current revision.`,
  ].join("\n"));
  const root = mkdtempSync(join(tmpdir(), "cairn-bench-compaction-"));
  let cluster: Cluster | undefined;
  let workers: LoadWorkers | undefined;
  const cleanup = (): void => {
    workers?.killNow();
    cluster?.killNow();
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", cleanup);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    cluster = await Cluster.start("cairn", join(root, "cairn"));
    const { leader } = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    const inFlights = split(settings.inFlight, settings.clients);
    const keyCounts = split(settings.keyspace, settings.clients);
    const options: WorkerOptions[] = inFlights.map((inFlight, index) => ({
      port: leader.clientPort, inFlight, valueBytes: settings.valueBytes,
      firstKey: keyCounts.slice(0, index).reduce((sum, count) => sum + count, 0), keyCount: keyCounts[index],
      requestTimeoutMs: REQUEST_TIMEOUT_MS, lifetimeMsMax: WORKER_LIFETIME_MS_MAX,
    }));
    workers = await LoadWorkers.start(options);
    await workers.go();
    await fill(cluster, settings, context);

    await workers.mark();
    await sleep(settings.baselineMs);
    const baseline = await workers.report();

    const { status } = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    await workers.mark();
    const compactionStarted = performance.now();
    await compact(leader.clientPort, status.revision);
    const compactionMs = performance.now() - compactionStarted;
    const during = await workers.report();
    context.note(`physical compaction of ${status.revision} revisions took ${(compactionMs / 1000).toFixed(1)} s under load`);

    await workers.stop();
    context.report(row("no compaction", baseline));
    context.report(row(`during compaction of ${status.revision} revisions`, during));
    if (baseline.errors.size > 0 || during.errors.size > 0) {
      for (const [kind, count] of [...baseline.errors, ...during.errors]) process.stderr.write(`  ${count}× ${kind}\n`);
      process.exitCode = 1;
    }
  } catch (error) {
    process.stderr.write(`compaction bench failed: ${(error as Error).message}\n${cluster?.logTails() ?? ""}\n`);
    process.exitCode = 1;
  } finally {
    workers?.killNow();
    await cluster?.stop();
    cleanup();
    process.off("exit", cleanup);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
