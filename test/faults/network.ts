/**
 * The fault harness's private network, built from Linux network namespaces
 * the harness creates and deletes itself (root only; nothing on the host's
 * own network changes):
 *
 *   hub namespace (the harness and its clients run here; it routes)
 *     hK  10.77.K.1/24  <-- veth -->  eth0 10.77.K.2/24   node namespace K (one cairn member)
 *
 * Every member has its own address and its packets to another member cross
 * the hub, so a member-to-member link can be cut in one direction with one
 * iptables rule in the hub's FORWARD chain, while the clients (in the hub
 * itself, INPUT/OUTPUT) still reach every member. A plain shared loopback
 * could not do this: every member would dial from 127.0.0.1.
 *
 * Link delay uses netem on the hub's side of a link when the kernel has it,
 * otherwise random loss on that link (TCP retransmits then stall it).
 */
import { spawnSync } from "node:child_process";

export class NetworkError extends Error {
  override name = "NetworkError";
}

const SUBNET = "10.77";
const COMMAND_TIMEOUT_MS = 20_000;

export interface Topology {
  /** Namespace the harness runs in. */
  readonly hub: string;
  /** Namespace of member K at index K-1. */
  readonly members: readonly string[];
}

export function memberAddress(position: number): string {
  return `${SUBNET}.${position}.2`;
}

function hubSideAddress(position: number): string {
  return `${SUBNET}.${position}.1`;
}

export function hubInterface(position: number): string {
  return `h${position}`;
}

/** Runs a command; throws NetworkError with its output when it fails. */
export function run(command: string, args: readonly string[], options: { allowFailure?: boolean } = {}): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: COMMAND_TIMEOUT_MS });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
  const ok = result.status === 0;
  if (!ok && options.allowFailure !== true) {
    const reason = result.error ? result.error.message : `exit ${String(result.status)}`;
    throw new NetworkError(`${command} ${args.join(" ")} failed (${reason}): ${output}`);
  }
  return { ok, output };
}

/**
 * Fails loudly, with what is missing, when this machine cannot build the
 * network: the harness has no fallback that would test less.
 */
export function checkPrerequisites(): void {
  if (process.platform !== "linux") throw new NetworkError(`the fault harness needs Linux network namespaces; this is ${process.platform}`);
  if (process.getuid?.() !== 0) throw new NetworkError("the fault harness needs root (ip netns, iptables); run it as root, as CI does");
  for (const tool of ["ip", "iptables"]) {
    const found = spawnSync(tool, ["-V"], { encoding: "utf8" });
    if (found.error) throw new NetworkError(`the fault harness needs \`${tool}\` (Debian: apt-get install iproute2 iptables): ${found.error.message}`);
  }
}

export function createTopology(tag: string, size: number): Topology {
  checkPrerequisites();
  const topology: Topology = { hub: `${tag}-hub`, members: Array.from({ length: size }, (_, index) => `${tag}-n${index + 1}`) };
  try {
    run("ip", ["netns", "add", topology.hub]);
    run("ip", ["-n", topology.hub, "link", "set", "lo", "up"]);
    run("ip", ["netns", "exec", topology.hub, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    topology.members.forEach((namespace, index) => {
      const position = index + 1;
      run("ip", ["netns", "add", namespace]);
      run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
      run("ip", ["link", "add", hubInterface(position), "netns", topology.hub, "type", "veth", "peer", "name", "eth0", "netns", namespace]);
      run("ip", ["-n", topology.hub, "addr", "add", `${hubSideAddress(position)}/24`, "dev", hubInterface(position)]);
      run("ip", ["-n", topology.hub, "link", "set", hubInterface(position), "up"]);
      run("ip", ["-n", namespace, "addr", "add", `${memberAddress(position)}/24`, "dev", "eth0"]);
      run("ip", ["-n", namespace, "link", "set", "eth0", "up"]);
      run("ip", ["-n", namespace, "route", "add", "default", "via", hubSideAddress(position)]);
    });
  } catch (error) {
    destroyTopology(topology);
    throw error;
  }
  return topology;
}

/** Kills whatever still runs in the namespaces (only processes this harness started live there) and deletes them. */
export function destroyTopology(topology: Topology): void {
  for (const namespace of [...topology.members, topology.hub]) {
    const pids = run("ip", ["netns", "pids", namespace], { allowFailure: true });
    if (pids.ok) {
      for (const pid of pids.output.split(/\s+/).filter((text) => /^\d+$/.test(text))) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    run("ip", ["netns", "del", namespace], { allowFailure: true });
  }
}

/** Namespaces left behind by harness runs whose process is gone (a crash, a kill -9): cleaned at the next start. */
export function removeStaleTopologies(prefix: string): void {
  const listed = run("ip", ["netns", "list"], { allowFailure: true }).output;
  const stale = new Map<string, string[]>();
  for (const line of listed.split("\n")) {
    const name = line.split(/\s+/)[0] ?? "";
    const match = new RegExp(`^(${prefix}(\\d+))-`).exec(name);
    if (!match) continue;
    try {
      process.kill(Number(match[2]), 0);
      continue;
    } catch {
      // The owner is gone.
    }
    const list = stale.get(match[1]) ?? [];
    list.push(name);
    stale.set(match[1], list);
  }
  for (const names of stale.values()) {
    destroyTopology({ hub: names.find((name) => name.endsWith("-hub")) ?? names[0], members: names.filter((name) => !name.endsWith("-hub")) });
  }
}

/**
 * Link faults, applied from inside the hub namespace (where the harness
 * runs). Rules live in a chain of our own so healing is one flush.
 */
export class LinkControl {
  private static readonly CHAIN = "CAIRN-FAULTS";
  private readonly delayed = new Set<number>();
  readonly netemAvailable: boolean;

  constructor(private readonly size: number) {
    run("iptables", ["-N", LinkControl.CHAIN], { allowFailure: true });
    run("iptables", ["-F", LinkControl.CHAIN]);
    if (!run("iptables", ["-C", "FORWARD", "-j", LinkControl.CHAIN], { allowFailure: true }).ok) run("iptables", ["-I", "FORWARD", "-j", LinkControl.CHAIN]);
    const probe = run("tc", ["qdisc", "add", "dev", hubInterface(1), "root", "netem", "delay", "1ms"], { allowFailure: true });
    this.netemAvailable = probe.ok;
    if (probe.ok) run("tc", ["qdisc", "del", "dev", hubInterface(1), "root"], { allowFailure: true });
  }

  /** Drops every packet member `from` sends to member `to` (positions from 1). */
  cut(from: number, to: number): void {
    run("iptables", ["-A", LinkControl.CHAIN, "-s", memberAddress(from), "-d", memberAddress(to), "-j", "DROP"]);
  }

  /** Delays (netem) or drops at random (fallback) everything the hub sends towards member `position`. */
  slow(position: number, delayMs: number, lossFraction: number): string {
    this.delayed.add(position);
    if (this.netemAvailable) {
      run("tc", ["qdisc", "add", "dev", hubInterface(position), "root", "netem", "delay", `${delayMs}ms`, `${Math.round(delayMs / 4)}ms`]);
      return `netem delay ${delayMs}ms`;
    }
    for (let other = 1; other <= this.size; other++) {
      if (other === position) continue;
      for (const [source, destination] of [[other, position], [position, other]]) {
        run("iptables", ["-A", LinkControl.CHAIN, "-s", memberAddress(source), "-d", memberAddress(destination),
          "-m", "statistic", "--mode", "random", "--probability", lossFraction.toFixed(2), "-j", "DROP"]);
      }
    }
    return `random loss ${Math.round(lossFraction * 100)}% (no netem in this kernel)`;
  }

  /** Removes every cut and delay. */
  healAll(): void {
    run("iptables", ["-F", LinkControl.CHAIN]);
    for (const position of this.delayed) run("tc", ["qdisc", "del", "dev", hubInterface(position), "root"], { allowFailure: true });
    this.delayed.clear();
  }

  rules(): string {
    return run("iptables", ["-S", LinkControl.CHAIN], { allowFailure: true }).output;
  }
}
