import { describe, expect, it } from "vitest";
import { createPrng } from "../../src/lib/prng.js";
import { nodeId, type NodeId } from "../../src/lib/ids.js";
import { InvalidNetworkConfigError, SimNetwork, type NetworkConfig } from "../../src/sim/network.js";

const perfect: NetworkConfig = {
  delayMsMin: 2, delayMsMax: 6, linkDelaySpreadMs: 0, lossProbability: 0,
  duplicateProbability: 0, reorderProbability: 0, reorderDelayMsMax: 0,
};
const [n1, n2, n3, n4, n5] = [1, 2, 3, 4, 5].map((id) => nodeId(id)) as NodeId[];
const all = [n1, n2, n3, n4, n5];

function reachable(network: SimNetwork, from: NodeId, to: NodeId): boolean {
  return !network.isBlocked(from, to);
}

describe("the simulated network", () => {
  it("delivers every message exactly once within the delay range when no fault is on", () => {
    const network = new SimNetwork(perfect, createPrng(1));
    for (let i = 0; i < 500; i++) {
      const delays = network.plan(n1, n2);
      expect(delays).toHaveLength(1);
      expect(delays[0]).toBeGreaterThanOrEqual(2);
      expect(delays[0]).toBeLessThanOrEqual(6);
    }
    expect(network.counters.dropped).toBe(0);
  });

  it("drops the slow links of the fault phase when reconfigured to a calm network", () => {
    const network = new SimNetwork({ ...perfect, linkDelaySpreadMs: 100 }, createPrng(3));
    const slowest = Math.max(...Array.from({ length: 50 }, () => network.plan(n1, n2)[0]));
    expect(slowest).toBeGreaterThan(6);
    network.reconfigure(perfect);
    for (let i = 0; i < 200; i++) expect(network.plan(n1, n2)[0]).toBeLessThanOrEqual(6);
  });

  it("loses, duplicates and reorders messages at the configured rates", () => {
    const network = new SimNetwork({ ...perfect, lossProbability: 0.3, duplicateProbability: 0.2, reorderProbability: 0.1, reorderDelayMsMax: 50 }, createPrng(2));
    let lost = 0;
    let duplicated = 0;
    for (let i = 0; i < 10_000; i++) {
      const copies = network.plan(n1, n2).length;
      if (copies === 0) lost++;
      if (copies === 2) duplicated++;
    }
    expect(lost / 10_000).toBeCloseTo(0.3, 1);
    expect(duplicated / 7_000).toBeCloseTo(0.2, 1);
    expect(network.counters.reordered).toBeGreaterThan(500);
  });

  it("gives each link its own fixed extra delay", () => {
    const network = new SimNetwork({ ...perfect, delayMsMin: 1, delayMsMax: 1, linkDelaySpreadMs: 100 }, createPrng(3));
    const first = network.plan(n1, n2)[0];
    expect(network.plan(n1, n2)[0]).toBe(first);
    const others = [network.plan(n2, n1)[0], network.plan(n1, n3)[0], network.plan(n3, n4)[0]];
    expect(new Set([first, ...others]).size).toBeGreaterThan(1);
  });

  it("cuts both directions in a symmetric partition and heals them", () => {
    const network = new SimNetwork(perfect, createPrng(4));
    network.partition([n1, n2], [n3, n4, n5]);
    expect(network.plan(n1, n3)).toEqual([]);
    expect(network.plan(n4, n2)).toEqual([]);
    expect(reachable(network, n1, n2)).toBe(true);
    expect(reachable(network, n3, n5)).toBe(true);
    network.heal();
    expect(network.plan(n1, n3)).toHaveLength(1);
  });

  it("cuts only one direction in a one-way partition", () => {
    const network = new SimNetwork(perfect, createPrng(5));
    network.oneWay([n1], [n2, n3]);
    expect(reachable(network, n1, n2)).toBe(false);
    expect(reachable(network, n2, n1)).toBe(true);
    expect(reachable(network, n3, n1)).toBe(true);
  });

  it("isolates one node from everyone else", () => {
    const network = new SimNetwork(perfect, createPrng(6));
    network.isolate(n3, all);
    for (const other of all.filter((id) => id !== n3)) {
      expect(reachable(network, n3, other)).toBe(false);
      expect(reachable(network, other, n3)).toBe(false);
    }
    expect(reachable(network, n1, n2)).toBe(true);
  });

  it("lets a bridge node talk to both sides that cannot talk to each other", () => {
    const network = new SimNetwork(perfect, createPrng(7));
    network.bridge([n1, n2], [n4, n5], n3);
    expect(reachable(network, n1, n4)).toBe(false);
    expect(reachable(network, n5, n2)).toBe(false);
    for (const other of [n1, n2, n4, n5]) {
      expect(reachable(network, n3, other)).toBe(true);
      expect(reachable(network, other, n3)).toBe(true);
    }
  });

  it("drops a message in flight when a partition starts before it arrives", () => {
    const network = new SimNetwork(perfect, createPrng(8));
    expect(network.plan(n1, n2)).toHaveLength(1);
    network.cut(n1, n2);
    expect(network.canDeliver(n1, n2)).toBe(false);
    expect(network.counters.dropped).toBe(1);
  });

  it("decides the same fates from the same seed", () => {
    const fates = (seed: number): number[][] => {
      const network = new SimNetwork({ ...perfect, lossProbability: 0.2, duplicateProbability: 0.2, linkDelaySpreadMs: 9 }, createPrng(seed));
      return Array.from({ length: 200 }, (_, i) => network.plan(all[i % 5], all[(i + 1) % 5]));
    };
    expect(fates(9)).toEqual(fates(9));
    expect(fates(9)).not.toEqual(fates(10));
  });

  it("rejects impossible rates and delay ranges", () => {
    expect(() => new SimNetwork({ ...perfect, lossProbability: 1.5 }, createPrng(1))).toThrow(InvalidNetworkConfigError);
    expect(() => new SimNetwork({ ...perfect, duplicateProbability: -0.1 }, createPrng(1))).toThrow(InvalidNetworkConfigError);
    expect(() => new SimNetwork({ ...perfect, delayMsMin: 9, delayMsMax: 3 }, createPrng(1))).toThrow(InvalidNetworkConfigError);
    expect(() => new SimNetwork({ ...perfect, linkDelaySpreadMs: -1 }, createPrng(1))).toThrow(InvalidNetworkConfigError);
  });
});
