/**
 * What the process-level test files share: the time budgets, a wrapper that
 * attaches the members' logs to a failure, and a wait for a member's local
 * copy of the acknowledged writes.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster, Member } from "./cluster.js";
import { lostWrites, readPrefix } from "./write-load.js";

/** Starting may first build dist/ and wait (up to 240 s) for another file's test cluster to stop. */
export const CLUSTER_START_TIMEOUT_MS = 300_000;
/** A crash test's whole budget: load, kill, election, read-back, restart and catch-up on a loaded 2-core machine. */
export const CRASH_TEST_TIMEOUT_MS = 120_000;
export const CATCH_UP_TIMEOUT_MS = 30_000;
export const WRITERS = 4;
export const WRITES_PER_WRITER_MAX = 5000;
export const LOAD_DURATION_MS_MAX = 60_000;
/** Load before a kill, so members die with writes in flight. */
export const LOAD_BEFORE_KILL_MS = 1500;

export function pause(milliseconds: number): Promise<void> {
  return new Promise((resolvePause) => setTimeout(resolvePause, milliseconds));
}

/** Runs a test body and, when it fails, appends the members' last log lines to the error and saves their whole logs. */
export async function withLogs(cluster: () => Cluster | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const current = cluster();
    if (current && error instanceof Error) {
      const saved = current.saveLogs(join(tmpdir(), `cairn-integration-logs-${process.pid}-${Date.now()}`));
      error.message = `${error.message}\n${current.logTail()}(full member logs in ${saved})`;
    }
    throw error;
  }
}

/** Polls a member's serializable (local) reads until it holds every acknowledged write; returns what is still missing. */
export async function waitForLocalCopy(cluster: Cluster, member: Member, prefix: string, acknowledged: ReadonlyMap<string, string>, timeoutMs: number): Promise<string[]> {
  const local = cluster.client({ members: [member] });
  const deadline = Date.now() + timeoutMs;
  let missing: string[] = ["(not read yet)"];
  while (Date.now() < deadline) {
    try {
      missing = lostWrites(acknowledged, await readPrefix(local, prefix, { serializable: true }));
      if (missing.length === 0) return missing;
    } catch (error) {
      missing = [`read failed: ${(error as Error).message}`];
    }
    await pause(200);
  }
  return missing;
}
