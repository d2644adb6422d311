/**
 * The parent's handle on the load-generator processes (load-worker.ts): it
 * spawns them, sends line commands to all at once and collects their JSON
 * answers, each wait bounded.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { LatencyHistogram } from "./latency-histogram.js";
import type { WorkerOptions, WorkerReport } from "./load-worker.js";

export class LoadWorkerError extends Error {
  override name = "LoadWorkerError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const ANSWER_TIMEOUT_MS = 15_000;
const STDERR_KEPT_BYTES = 4096;

class WorkerProcess {
  private readonly lines: AsyncIterator<string>;
  private stderr = "";

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString("utf8")).slice(-STDERR_KEPT_BYTES)));
    child.on("error", () => undefined);
  }

  async answer<T>(command?: string): Promise<T> {
    if (command !== undefined) this.child.stdin.write(command + "\n");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(
      () => reject(new LoadWorkerError(`load worker ${this.child.pid} did not answer ${command ?? "its start"} within ${ANSWER_TIMEOUT_MS} ms; stderr: ${this.stderr}`)),
      ANSWER_TIMEOUT_MS)));
    try {
      const next = await Promise.race([this.lines.next(), timeout]);
      if (next.done) throw new LoadWorkerError(`load worker ${this.child.pid} exited (${this.child.exitCode ?? this.child.signalCode}); stderr: ${this.stderr}`);
      return JSON.parse(next.value) as T;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface LoadTotals {
  completed: number;
  errors: Map<string, number>;
  elapsedMs: number;
  histogram: LatencyHistogram;
}

export class LoadWorkers {
  private constructor(private readonly workers: readonly WorkerProcess[]) {}

  /** Spawns one process per options entry and waits until each has its connection. */
  static async start(optionsPerWorker: readonly WorkerOptions[]): Promise<LoadWorkers> {
    const script = fileURLToPath(new URL("./load-worker.js", import.meta.url));
    const workers = optionsPerWorker.map((options) =>
      new WorkerProcess(spawn(process.execPath, [script, JSON.stringify(options)], { stdio: ["pipe", "pipe", "pipe"] })));
    const group = new LoadWorkers(workers);
    try {
      await group.all("");
    } catch (error) {
      group.killNow();
      throw error;
    }
    return group;
  }

  pids(): number[] {
    return this.workers.map((worker) => {
      if (worker.child.pid === undefined || worker.child.exitCode !== null) throw new LoadWorkerError("a load worker is not running");
      return worker.child.pid;
    });
  }

  /** Sends `command` to every worker (empty: only read the next answer) and waits for all answers. */
  private async all<T>(command: string): Promise<T[]> {
    return Promise.all(this.workers.map((worker) => worker.answer<T>(command === "" ? undefined : command)));
  }

  async go(): Promise<void> {
    await this.all("go");
  }

  async mark(): Promise<void> {
    await this.all("mark");
  }

  async report(): Promise<LoadTotals> {
    const reports = await this.all<WorkerReport>("report");
    const totals: LoadTotals = { completed: 0, errors: new Map(), elapsedMs: 0, histogram: new LatencyHistogram() };
    for (const report of reports) {
      totals.completed += report.completed;
      totals.elapsedMs = Math.max(totals.elapsedMs, report.elapsedMs);
      totals.histogram.merge(new LatencyHistogram(report.histogram));
      for (const [kind, count] of Object.entries(report.errors)) totals.errors.set(kind, (totals.errors.get(kind) ?? 0) + count);
    }
    return totals;
  }

  /** Stops sending and lets in-flight requests finish (bounded in each worker); returns how many were abandoned. */
  async stop(): Promise<number> {
    const answers = await this.all<{ abandoned: number }>("stop");
    return answers.reduce((sum, answer) => sum + answer.abandoned, 0);
  }

  killNow(): void {
    for (const worker of this.workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGKILL");
  }
}
