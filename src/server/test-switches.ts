/**
 * TEST-ONLY switches for the fault harness (test/faults), read from the
 * environment when a member starts. Production never sets them; a member
 * that has one set says so loudly in its log on every start.
 *
 * CAIRN_TEST_POWER_CUT=1: the WAL goes through the power-cut file layer, so
 *   a SIGKILL loses every WAL write no fdatasync covered, as a power cut
 *   would (a plain SIGKILL keeps the kernel's page cache).
 *   CAIRN_TEST_SYNC_DELAY_MS=<ms> with it: every sync starts that much later,
 *   a slow disk that widens the window a kill can land in.
 * CAIRN_TEST_FAULT=<name>: a planted bug, so the harness's own tests can
 *   prove it catches real ones:
 *   - stale-reads: linearizable reads skip the ReadIndex barrier and answer
 *     from this member's local state (a lagging follower or a deposed
 *     leader then serves stale data);
 *   - ack-before-quorum: a write is acknowledged before a quorum persisted
 *     it: followers answer appends before persisting them, and the leader
 *     counts its own unpersisted entries and applies and answers without
 *     waiting for its WAL's fdatasync. Followers still apply only after
 *     their own sync, so with CAIRN_TEST_POWER_CUT and a sync delay, a power
 *     cut loses the writes of the last delay on every follower; if the old
 *     leader then comes back after the others elected a new one, writes it
 *     acknowledged are gone.
 */
import type { RaftFaults } from "../raft/mod.js";

export const PLANTED_FAULTS = ["stale-reads", "ack-before-quorum"] as const;
export type PlantedFault = (typeof PLANTED_FAULTS)[number];

export interface TestSwitches {
  readonly powerCut: boolean;
  readonly syncDelayMs: number;
  readonly fault: PlantedFault | null;
}

export class TestSwitchError extends Error {
  override name = "TestSwitchError";
}

export function readTestSwitches(environment: Readonly<Record<string, string | undefined>>): TestSwitches {
  const fault = environment.CAIRN_TEST_FAULT;
  if (fault !== undefined && fault !== "" && !(PLANTED_FAULTS as readonly string[]).includes(fault)) {
    throw new TestSwitchError(`CAIRN_TEST_FAULT=${fault} is not a planted fault; known: ${PLANTED_FAULTS.join(", ")}`);
  }
  const delay = environment.CAIRN_TEST_SYNC_DELAY_MS ?? "0";
  const syncDelayMs = Number(delay);
  if (!/^\d+$/.test(delay) || syncDelayMs > 10_000) throw new TestSwitchError(`CAIRN_TEST_SYNC_DELAY_MS must be an integer of milliseconds up to 10000, got ${JSON.stringify(delay)}`);
  return {
    powerCut: environment.CAIRN_TEST_POWER_CUT === "1", syncDelayMs,
    fault: fault === undefined || fault === "" ? null : fault as PlantedFault,
  };
}

/** The Raft rules the planted fault breaks, if it is one of Raft's. */
export function raftFaultsOf(switches: TestSwitches): RaftFaults | undefined {
  return switches.fault === "ack-before-quorum" ? { ackBeforePersist: true, leaderCountsUnpersisted: true } : undefined;
}

export function describeTestSwitches(switches: TestSwitches): string | null {
  const parts = [switches.powerCut ? `the WAL loses unsynced writes on a kill (CAIRN_TEST_POWER_CUT), syncs ${switches.syncDelayMs} ms late` : "", switches.fault ? `PLANTED BUG ${switches.fault} (CAIRN_TEST_FAULT)` : ""].filter(Boolean);
  return parts.length === 0 ? null : `TEST-ONLY switches on: ${parts.join("; ")}`;
}
