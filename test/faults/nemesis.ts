/**
 * The nemesis: a schedule of faults drawn from the run's seed (which faults,
 * on which members, when, for how long), then carried out against the
 * cluster. One fault at a time, each healed before the next healthy phase,
 * and all healed before the final liveness phase. "leader" targets resolve
 * to whichever member leads when the fault starts, so the schedule replays
 * from its seed even though leadership does not.
 */
import type { Prng } from "../../src/lib/prng.js";
import type { FaultCluster, FaultMember } from "./controller.js";
import type { LinkControl } from "./network.js";

export const NEMESIS_GROUPS = {
  kill: ["kill"],
  pause: ["pause"],
  partition: ["partition-isolate", "partition-majority", "partition-one-way", "partition-bridge"],
  slow: ["slow-link"],
  "kill-all": ["kill-all"],
} as const;

export type FaultKind = (typeof NEMESIS_GROUPS)[keyof typeof NEMESIS_GROUPS][number];

export type NemesisName = keyof typeof NEMESIS_GROUPS | "all";

export function faultKindsOf(names: readonly string[]): FaultKind[] {
  const kinds = new Set<FaultKind>();
  for (const name of names) {
    if (name === "all") {
      for (const group of Object.values(NEMESIS_GROUPS)) for (const kind of group) kinds.add(kind);
    } else if (name in NEMESIS_GROUPS) {
      for (const kind of NEMESIS_GROUPS[name as keyof typeof NEMESIS_GROUPS]) kinds.add(kind);
    } else {
      throw new Error(`unknown nemesis ${JSON.stringify(name)}; choose from ${[...Object.keys(NEMESIS_GROUPS), "all"].join(", ")}`);
    }
  }
  return [...kinds];
}

export interface PlannedFault {
  readonly kind: FaultKind;
  /** From the start of the fault phase. */
  readonly atMs: number;
  readonly durationMs: number;
  /** "leader", or a member position (from 1). */
  readonly target: "leader" | number;
  /** Partitions: a member position that decides the split (majority side, bridge member, ...). */
  readonly other: number;
  /** slow-link: delay (netem) or the loss fraction's basis. */
  readonly delayMs: number;
}

export interface ScheduleOptions {
  readonly kinds: readonly FaultKind[];
  readonly faultPhaseMs: number;
  readonly size: number;
}

/** Healthy time between two faults: long enough for elections and for the run to prove it makes progress. */
export const HEALTHY_GAP_MS_MIN = 5000;
const HEALTHY_GAP_MS_MAX = 9000;
const FAULT_MS_MIN = 2000;
const FAULT_MS_MAX = 9000;
const KILL_ALL_MS_MAX = 3000;
/** After a kill-all aimed at the leader, the old leader restarts last, at least this long after the others (several election timeouts). */
const LATE_LEADER_GAP_MS_MIN = 3000;

export function planSchedule(random: Prng, options: ScheduleOptions): PlannedFault[] {
  const faults: PlannedFault[] = [];
  let atMs = random.between(2000, 4000);
  while (options.kinds.length > 0) {
    const kind = random.pick(options.kinds);
    const durationMs = kind === "kill-all" ? random.between(500, KILL_ALL_MS_MAX) : random.between(FAULT_MS_MIN, FAULT_MS_MAX);
    if (atMs + durationMs > options.faultPhaseMs) break;
    const target = random.chance(0.5) ? "leader" : random.between(1, options.size);
    faults.push({ kind, atMs, durationMs, target, other: random.between(1, options.size), delayMs: random.between(50, 400) });
    atMs += durationMs + random.between(HEALTHY_GAP_MS_MIN, HEALTHY_GAP_MS_MAX);
  }
  return faults;
}

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly startMs: number;
  readonly endMs: number;
  readonly description: string;
}

/** Carries out one planned fault, waits its duration, and heals it. */
export async function performFault(
  fault: PlannedFault,
  cluster: FaultCluster,
  links: LinkControl,
  random: Prng,
  now: () => number,
): Promise<FaultRecord> {
  const members = cluster.members;
  const size = members.length;
  const leader = fault.target === "leader" ? await cluster.leader() : undefined;
  const target: FaultMember = leader ?? members[(fault.target === "leader" ? fault.other : fault.target) - 1];
  const label = `${target.name}${leader ? " (leader)" : ""}`;
  const startMs = now();
  let description = "";
  const wait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, fault.durationMs));
  switch (fault.kind) {
    case "kill":
      description = `kill -9 ${label}, restart after ${fault.durationMs} ms`;
      await cluster.kill(target);
      await wait();
      cluster.start(target);
      break;
    case "kill-all": {
      // Restarted one by one in a random order: a majority may elect a leader before the last member is back.
      const order = members.map((member) => ({ member, order: random.float() })).sort((a, b) => a.order - b.order).map((entry) => entry.member);
      const gapsMs = order.map(() => random.between(0, 1500));
      if (leader) {
        // When the fault targets the leader, it is the machine that comes back late: the others elect a leader
        // and take writes without it. A write it acknowledged that no other member kept is then lost for good.
        // (Derived from the draws above, so the rest of the schedule stays the same.)
        const last = order.length - 1;
        const at = order.indexOf(leader);
        [order[at], order[last]] = [order[last], order[at]];
        gapsMs[last] = LATE_LEADER_GAP_MS_MIN + 2 * gapsMs[last];
      }
      description = `kill -9 every member at once${leader ? ` (${leader.name} led)` : ""}, restart ${order.map((member, index) => `${member.name} +${gapsMs[index]} ms`).join(", ")} after ${fault.durationMs} ms`;
      await Promise.all(members.map((member) => cluster.kill(member)));
      await wait();
      for (const [index, member] of order.entries()) {
        await new Promise((resolve) => setTimeout(resolve, gapsMs[index]));
        cluster.start(member);
      }
      break;
    }
    case "pause":
      description = `SIGSTOP ${label} for ${fault.durationMs} ms`;
      cluster.pause(target);
      await wait();
      cluster.resume(target);
      break;
    case "partition-isolate":
      description = `isolate ${label} from every peer for ${fault.durationMs} ms`;
      for (const other of members) {
        if (other === target) continue;
        links.cut(target.position, other.position);
        links.cut(other.position, target.position);
      }
      await wait();
      links.healAll();
      break;
    case "partition-majority": {
      // The target lands in the minority: a leader there must step down and the majority elect another.
      const others = members.filter((member) => member !== target);
      const shuffled = others.map((member) => ({ member, order: random.float() })).sort((a, b) => a.order - b.order).map((entry) => entry.member);
      const minority = [target, ...shuffled.slice(0, Math.floor((size - 1) / 2) - 1)];
      const majority = members.filter((member) => !minority.includes(member));
      description = `partition {${minority.map((member) => member.name).join(",")}} | {${majority.map((member) => member.name).join(",")}} for ${fault.durationMs} ms`;
      for (const a of minority) {
        for (const b of majority) {
          links.cut(a.position, b.position);
          links.cut(b.position, a.position);
        }
      }
      await wait();
      links.healAll();
      break;
    }
    case "partition-one-way": {
      const outbound = random.chance(0.5);
      description = `${outbound ? `${label} cannot send to` : `${label} cannot hear from`} any peer for ${fault.durationMs} ms`;
      for (const other of members) {
        if (other === target) continue;
        if (outbound) links.cut(target.position, other.position);
        else links.cut(other.position, target.position);
      }
      await wait();
      links.healAll();
      break;
    }
    case "partition-bridge": {
      // Two halves that only the target hears both of (Jepsen's bridge): the target keeps links to everyone.
      const others = members.filter((member) => member !== target);
      const half = Math.ceil(others.length / 2);
      const left = others.slice(0, half);
      const right = others.slice(half);
      description = `bridge: {${left.map((member) => member.name).join(",")}} and {${right.map((member) => member.name).join(",")}} cut apart, only ${label} reaches both, for ${fault.durationMs} ms`;
      for (const a of left) {
        for (const b of right) {
          links.cut(a.position, b.position);
          links.cut(b.position, a.position);
        }
      }
      await wait();
      links.healAll();
      break;
    }
    case "slow-link": {
      const how = links.slow(target.position, fault.delayMs, Math.min(0.6, 0.15 + fault.delayMs / 1000));
      description = `slow links of ${label}: ${how}, for ${fault.durationMs} ms`;
      await wait();
      links.healAll();
      break;
    }
  }
  return { kind: fault.kind, startMs, endMs: now(), description };
}
