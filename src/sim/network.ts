/**
 * The simulated network: per-link delay, loss, duplication and reordering,
 * plus partitions made of cut directed links (symmetric, one-way,
 * isolate-a-node, majority/minority, bridge). It only decides what happens to
 * a message; the cluster schedules the deliveries on the event queue.
 */
import { assert } from "../lib/assert.js";
import type { Prng } from "../lib/prng.js";
import type { NodeId } from "../lib/ids.js";

export interface NetworkConfig {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** Each link gets a fixed extra delay in [0, linkDelaySpreadMs]: some links are slower than others. */
  readonly linkDelaySpreadMs: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  /** A reordered message is held back by up to reorderDelayMsMax more, so later messages overtake it. */
  readonly reorderProbability: number;
  readonly reorderDelayMsMax: number;
}

export const PARTITION_KINDS = ["symmetric", "one-way", "isolate", "majority-minority", "bridge"] as const;
export type PartitionKind = (typeof PARTITION_KINDS)[number];

export interface NetworkCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

export class InvalidNetworkConfigError extends Error {
  override name = "InvalidNetworkConfigError";
}

export function validateNetworkConfig(config: NetworkConfig): void {
  const probabilities = [config.lossProbability, config.duplicateProbability, config.reorderProbability];
  if (probabilities.some((p) => !(p >= 0 && p <= 1))) throw new InvalidNetworkConfigError("network probabilities must lie in [0, 1]");
  if (!(config.delayMsMin >= 0 && config.delayMsMax >= config.delayMsMin)) {
    throw new InvalidNetworkConfigError(`network delay range [${config.delayMsMin}, ${config.delayMsMax}] is invalid`);
  }
  if (!(config.linkDelaySpreadMs >= 0 && config.reorderDelayMsMax >= 0)) throw new InvalidNetworkConfigError("network delays must be non-negative");
}

export class SimNetwork {
  readonly counters: NetworkCounters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0 };
  private config: NetworkConfig;
  private readonly random: Prng;
  private readonly blocked = new Set<string>();
  private readonly linkExtraDelayMs = new Map<string, number>();

  constructor(config: NetworkConfig, random: Prng) {
    validateNetworkConfig(config);
    this.config = config;
    this.random = random;
  }

  /** Replaces the fault rates (the liveness phase turns loss off). */
  reconfigure(config: NetworkConfig): void {
    validateNetworkConfig(config);
    // Per-link extra delays were drawn within the old spread: a calm network must not keep slow links from
    // the fault phase (seed 393643200376 stalled on 17 ms links against a 50 ms election timeout).
    if (config.linkDelaySpreadMs !== this.config.linkDelaySpreadMs) this.linkExtraDelayMs.clear();
    this.config = config;
  }

  /**
   * Decides the fate of one message from `from` to `to`: the delays after
   * which copies arrive (empty when lost, two when duplicated).
   */
  plan(from: NodeId, to: NodeId): number[] {
    this.counters.sent++;
    const key = linkKey(from, to);
    if (this.blocked.has(key) || this.random.chance(this.config.lossProbability)) {
      this.counters.dropped++;
      return [];
    }
    const copies = this.random.chance(this.config.duplicateProbability) ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    const delays: number[] = [];
    for (let copy = 0; copy < copies; copy++) delays.push(this.delayMs(key));
    return delays;
  }

  /** Checked again on arrival: a partition that starts while a message is in flight cuts it too. */
  canDeliver(from: NodeId, to: NodeId): boolean {
    if (this.blocked.has(linkKey(from, to))) {
      this.counters.dropped++;
      return false;
    }
    this.counters.delivered++;
    return true;
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(linkKey(from, to));
  }

  get blockedLinkCount(): number {
    return this.blocked.size;
  }

  cut(from: NodeId, to: NodeId): void {
    assert(from !== to, "a node cannot be cut from itself");
    this.blocked.add(linkKey(from, to));
  }

  restore(from: NodeId, to: NodeId): void {
    this.blocked.delete(linkKey(from, to));
  }

  /** Nobody in `left` hears anybody in `right` and vice versa. */
  partition(left: readonly NodeId[], right: readonly NodeId[]): void {
    this.oneWay(left, right);
    this.oneWay(right, left);
  }

  /** Messages from `senders` to `receivers` are lost; the other direction still works. */
  oneWay(senders: readonly NodeId[], receivers: readonly NodeId[]): void {
    for (const from of senders) for (const to of receivers) if (from !== to) this.cut(from, to);
  }

  isolate(node: NodeId, everyone: readonly NodeId[]): void {
    this.partition([node], everyone.filter((other) => other !== node));
  }

  /** `left` and `right` cannot talk to each other, but both talk to `bridge`. */
  bridge(left: readonly NodeId[], right: readonly NodeId[], bridge: NodeId): void {
    this.partition(left.filter((id) => id !== bridge), right.filter((id) => id !== bridge));
  }

  heal(): void {
    this.blocked.clear();
  }

  private delayMs(key: string): number {
    let extra = this.linkExtraDelayMs.get(key);
    if (extra === undefined) {
      extra = this.config.linkDelaySpreadMs === 0 ? 0 : this.random.float() * this.config.linkDelaySpreadMs;
      this.linkExtraDelayMs.set(key, extra);
    }
    let delay = this.config.delayMsMin + this.random.float() * (this.config.delayMsMax - this.config.delayMsMin) + extra;
    if (this.random.chance(this.config.reorderProbability)) {
      this.counters.reordered++;
      delay += this.random.float() * this.config.reorderDelayMsMax;
    }
    return delay;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
