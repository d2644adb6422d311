import { describe, expect, it } from "vitest";
import { describeTestSwitches, raftFaultsOf, readTestSwitches, TestSwitchError } from "./test-switches.js";

describe("the test-only switches", () => {
  it("are all off in an environment that names none", () => {
    const switches = readTestSwitches({ PATH: "/usr/bin" });
    expect(switches).toEqual({ powerCut: false, syncDelayMs: 0, fault: null });
    expect(raftFaultsOf(switches)).toBeUndefined();
    expect(describeTestSwitches(switches)).toBeNull();
  });

  it("turn on the power-cut layer and a planted fault, and say so", () => {
    const switches = readTestSwitches({ CAIRN_TEST_POWER_CUT: "1", CAIRN_TEST_SYNC_DELAY_MS: "15", CAIRN_TEST_FAULT: "ack-before-quorum" });
    expect(switches).toEqual({ powerCut: true, syncDelayMs: 15, fault: "ack-before-quorum" });
    expect(raftFaultsOf(switches)).toEqual({ ackBeforePersist: true, leaderCountsUnpersisted: true });
    expect(describeTestSwitches(switches)).toMatch(/PLANTED BUG ack-before-quorum/);
    expect(raftFaultsOf(readTestSwitches({ CAIRN_TEST_FAULT: "stale-reads" }))).toBeUndefined();
  });

  it("refuse a fault name they do not know, naming the known ones", () => {
    expect(() => readTestSwitches({ CAIRN_TEST_FAULT: "stale-read" })).toThrow(TestSwitchError);
    expect(() => readTestSwitches({ CAIRN_TEST_FAULT: "stale-read" })).toThrow(/stale-reads, ack-before-quorum/);
    expect(() => readTestSwitches({ CAIRN_TEST_SYNC_DELAY_MS: "-1" })).toThrow(/CAIRN_TEST_SYNC_DELAY_MS/);
    expect(() => readTestSwitches({ CAIRN_TEST_SYNC_DELAY_MS: "soon" })).toThrow(TestSwitchError);
  });
});
