import { describe, expect, it } from "vitest";
import { runSimulation } from "../../src/sim/cluster.js";
import { DEFAULT_STEPS, main, parseCli, UsageError } from "../../src/sim/cli.js";
import { decodeCommand, decodeSnapshotData, encodeCommand, InvalidCommandError, InvalidSnapshotDataError, RegisterMachine } from "../../src/sim/state-machine.js";
import { confState } from "../../src/raft/mod.js";

describe("a simulation run", () => {
  it("replays exactly from its seed", () => {
    const first = runSimulation({ seed: 77, steps: 6000, trace: true, traceEventsMax: 200 });
    const second = runSimulation({ seed: 77, steps: 6000, trace: true, traceEventsMax: 200 });
    expect(second.counters).toEqual(first.counters);
    expect(second.trace).toEqual(first.trace);
    expect(second.simulatedMs).toBe(first.simulatedMs);
    const other = runSimulation({ seed: 78, steps: 6000 });
    expect(other.counters).not.toEqual(first.counters);
  });

  it("runs the same history with and without the trace", () => {
    const traced = runSimulation({ seed: 5, steps: 5000, trace: true });
    const plain = runSimulation({ seed: 5, steps: 5000 });
    expect(plain.counters).toEqual(traced.counters);
    expect(plain.trace).toEqual([]);
  });

  it("honours the requested cluster size", () => {
    for (const nodeCount of [3, 5, 7] as const) {
      expect(runSimulation({ seed: 3, steps: 2000, nodeCount }).swarm.nodeCount).toBe(nodeCount);
    }
  });

  it("elects leaders and commits client writes", () => {
    let committed = 0;
    let elections = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const result = runSimulation({ seed, steps: 8000 });
      committed += result.counters.proposalsCommitted;
      elections += result.counters.elections;
    }
    expect(elections).toBeGreaterThan(20);
    expect(committed).toBeGreaterThan(50);
  });

  it("reports a planted fault as a violation with its seed", () => {
    let found = null;
    for (let seed = 1; seed <= 200 && found === null; seed++) {
      const result = runSimulation({ seed, steps: 20_000, faults: { voteIgnoresLog: true } });
      if (result.violation !== null) found = result;
    }
    expect(found?.violation?.property).toBe("leader-completeness");
  });
});

describe("the simulator command line", () => {
  it("parses a replay and a range", () => {
    expect(parseCli(["--seed", "12"])).toMatchObject({ seed: 12, steps: DEFAULT_STEPS });
    expect(parseCli(["--seeds", "5", "--first-seed", "100", "--nodes", "5", "--steps", "300", "--fault", "commitAnyTerm"]))
      .toMatchObject({ seeds: 5, firstSeed: 100, nodeCount: 5, steps: 300, faults: { commitAnyTerm: true } });
  });

  it("rejects bad usage with a clear message", async () => {
    expect(() => parseCli([])).toThrow(UsageError);
    expect(() => parseCli(["--seed", "1", "--seeds", "2"])).toThrow(UsageError);
    expect(() => parseCli(["--seed", "-3"])).toThrow(/--seed/);
    expect(() => parseCli(["--seeds", "2", "--nodes", "4"])).toThrow(/--nodes/);
    expect(() => parseCli(["--seeds", "2", "--fault", "typo"])).toThrow(/unknown --fault/);
    expect(() => parseCli(["--seeds", "2", "--bogus"])).toThrow(UsageError);
    const lines: string[] = [];
    expect(await main(["--steps", "x"], (line) => lines.push(line))).toBe(2);
    expect(lines.join("\n")).toMatch(/^sim: /);
  });

  it("runs a range of seeds, prints a summary and exits 0 when all pass", async () => {
    const lines: string[] = [];
    expect(await main(["--seeds", "3", "--first-seed", "4", "--steps", "3000"], (line) => lines.push(line))).toBe(0);
    expect(lines.join("\n")).toMatch(/3 seeds \[4, 6\].*0 failed/);
  });

  it("exits 1 and names the failing seed when a planted fault is caught", async () => {
    const lines: string[] = [];
    expect(await main(["--seeds", "60", "--first-seed", "1", "--steps", "20000", "--fault", "voteIgnoresLog", "--trace", "20"], (line) => lines.push(line))).toBe(1);
    const output = lines.join("\n");
    expect(output).toMatch(/FAILING SEEDS: \d+/);
    expect(output).toMatch(/seed \d+ FAILED: leader-completeness/);
    expect(output).toMatch(/last 20 events:/);
  });
});

describe("the register state machine", () => {
  it("applies commands in order and round-trips its snapshot", () => {
    const machine = new RegisterMachine({ values: new Map(), applied: 0, confState: confState([1]) });
    machine.applyCommand(1, encodeCommand({ key: "a", value: 7 }));
    machine.applyCommand(2, new Uint8Array(0));
    machine.applyCommand(3, encodeCommand({ key: "a", value: 9 }));
    expect(machine.values.get("a")).toBe(9);
    expect(machine.applied).toBe(3);
    expect(decodeSnapshotData(machine.encodeSnapshotData())).toEqual(new Map([["a", 9]]));
    expect(() => machine.applyCommand(5, new Uint8Array(0))).toThrow(/applies index 5 after 3/);
  });

  it("rejects malformed commands and snapshot data", () => {
    expect(decodeCommand(encodeCommand({ key: "b", value: 12 }))).toEqual({ key: "b", value: 12 });
    expect(() => decodeCommand(new TextEncoder().encode("no-separator"))).toThrow(InvalidCommandError);
    expect(() => decodeCommand(new TextEncoder().encode("a=x"))).toThrow(InvalidCommandError);
    expect(() => decodeSnapshotData(new TextEncoder().encode("{"))).toThrow(InvalidSnapshotDataError);
    expect(() => decodeSnapshotData(new TextEncoder().encode("[[1,2]]"))).toThrow(InvalidSnapshotDataError);
  });
});
