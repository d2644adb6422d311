import { describe, expect, it } from "vitest";
import { Xoshiro128 } from "../../src/lib/prng.js";
import { parseArguments } from "./main.js";
import { HEALTHY_GAP_MS_MIN, faultKindsOf, planSchedule } from "./nemesis.js";

describe("the nemesis schedule", () => {
  const plan = (seed: number, names: string[] = ["all"]) =>
    planSchedule(new Xoshiro128(seed).fork(), { kinds: faultKindsOf(names), faultPhaseMs: 300_000, size: 3 });

  it("is the same for the same seed, so a run replays from its seed", () => {
    expect(plan(42)).toEqual(plan(42));
    expect(plan(42)).not.toEqual(plan(43));
  });

  it("ends every fault inside the fault phase, one at a time, with healthy time between", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const faults = plan(seed);
      expect(faults.length).toBeGreaterThan(10);
      for (const [index, fault] of faults.entries()) {
        expect(fault.atMs + fault.durationMs).toBeLessThanOrEqual(300_000);
        const next = faults[index + 1];
        if (next) expect(next.atMs - (fault.atMs + fault.durationMs)).toBeGreaterThanOrEqual(HEALTHY_GAP_MS_MIN);
        expect(fault.target === "leader" || (fault.target >= 1 && fault.target <= 3)).toBe(true);
      }
    }
  });

  it("draws only the fault kinds asked for, and aims at the leader often", () => {
    const faults = Array.from({ length: 20 }, (_, seed) => plan(seed, ["kill", "pause"])).flat();
    expect(new Set(faults.map((fault) => fault.kind))).toEqual(new Set(["kill", "pause"]));
    const atLeader = faults.filter((fault) => fault.target === "leader").length;
    expect(atLeader / faults.length).toBeGreaterThan(0.3);
    expect(new Set(plan(7, ["all"]).map((fault) => fault.kind)).size).toBeGreaterThan(4);
  });

  it("refuses a nemesis it does not know", () => {
    expect(() => faultKindsOf(["kill", "meteor"])).toThrow(/unknown nemesis "meteor"/);
  });
});

describe("the harness's arguments", () => {
  it("take defaults and explicit values", () => {
    const options = parseArguments(["--seed", "9", "--time", "45", "--nemesis", "kill,partition", "--nodes", "5"]);
    expect(options).toMatchObject({ seed: 9, timeSeconds: 45, nemesis: ["kill", "partition"], nodes: 5, clients: 10, syncDelayMs: 10 });
    expect(parseArguments([]).nodes).toBe(3);
  });

  it("refuse unknown options, missing values and out-of-range numbers", () => {
    expect(() => parseArguments(["--speed", "3"])).toThrow(/unknown option --speed/);
    expect(() => parseArguments(["--seed"])).toThrow(/--seed needs a value/);
    expect(() => parseArguments(["--time", "5"])).toThrow(/--time must be an integer in \[10, 86400\]/);
    expect(() => parseArguments(["--nodes", "4"])).toThrow(/--nodes must be 3 or 5/);
    expect(() => parseArguments(["stray"])).toThrow(/unexpected argument/);
  });
});
