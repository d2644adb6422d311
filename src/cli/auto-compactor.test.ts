import { describe, expect, it } from "vitest";
import type { KvBackend } from "../api/backend.js";
import { AutoCompactor } from "./auto-compactor.js";

function fakeBackend(state: { current: number; compacted: number; proposed: number[] }): KvBackend {
  return {
    mvcc: { currentRevision: () => state.current, compactRevision: () => state.compacted },
    propose: async (command: { type: string; request: { revision: number } }) => {
      state.proposed.push(command.request.revision);
      state.compacted = command.request.revision;
      return {} as never;
    },
  } as unknown as KvBackend;
}

describe("auto-compaction", () => {
  it("revision mode keeps the last `retention` revisions and does not compact twice to the same point", async () => {
    const state = { current: 1500, compacted: 0, proposed: [] as number[] };
    const compactor = new AutoCompactor(fakeBackend(state), { mode: "revision", retention: 1000, isLeader: () => true, log: () => {} });
    await compactor.check();
    await compactor.check();
    expect(state.proposed).toEqual([500]);
    state.current = 2200;
    await compactor.check();
    expect(state.proposed).toEqual([500, 1200]);
  });

  it("periodic mode compacts to the revision sampled one retention period ago", async () => {
    const state = { current: 10, compacted: 0, proposed: [] as number[] };
    const compactor = new AutoCompactor(fakeBackend(state), { mode: "periodic", retention: 60_000, isLeader: () => true, log: () => {} });
    await compactor.check(0);
    state.current = 50;
    await compactor.check(30_000);
    expect(state.proposed).toEqual([]);
    state.current = 90;
    await compactor.check(60_000);
    expect(state.proposed).toEqual([10]);
    await compactor.check(90_000);
    expect(state.proposed).toEqual([10, 50]);
  });

  it("only the leader proposes, and a retention of 0 never starts", async () => {
    const state = { current: 5000, compacted: 0, proposed: [] as number[] };
    const follower = new AutoCompactor(fakeBackend(state), { mode: "revision", retention: 10, isLeader: () => false, log: () => {} });
    await follower.check();
    expect(state.proposed).toEqual([]);
    const disabled = new AutoCompactor(fakeBackend(state), { mode: "revision", retention: 0, isLeader: () => true, log: () => {} });
    disabled.start();
    disabled.stop();
    expect(state.proposed).toEqual([]);
  });
});
