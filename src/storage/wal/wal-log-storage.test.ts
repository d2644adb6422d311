import { describe, expect, it } from "vitest";
import { nodeId, NO_NODE } from "../../lib/ids.js";
import type { SnapshotMetadata } from "../../raft/types.js";
import { WalCompactedError, WalUnavailableError } from "./errors.js";
import { G0, G1, makeEntries, memoryFileSystem, openTestWal, plain } from "./test-support.js";
import { EMPTY_CONF_STATE, WalLogStorage } from "./wal-log-storage.js";

const conf = { voters: [nodeId(1), nodeId(2), nodeId(3)], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

describe("the Raft LogStorage view of one group", () => {
  it("starts empty for a group the WAL has never seen", async () => {
    const wal = await openTestWal(memoryFileSystem());
    const storage = new WalLogStorage(wal, G0, () => new Uint8Array([1]));
    expect(storage.initialState()).toEqual({ hardState: { term: 0, vote: NO_NODE, commit: 0 }, confState: EMPTY_CONF_STATE });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(0)]).toEqual([1, 0, 0]);
    expect(storage.snapshot()).toEqual({ metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) });
    expect(storage.entries(1, 1, 100)).toEqual([]);
    await wal.close();
  });

  it("serves one group's entries, terms, hard state and snapshot after a restart, the snapshot data from the provider", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs);
    await wal.append([
      { type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 2, 2, 2]) },
      { type: "entries", group: G1, entries: makeEntries(1, 1, [7]) },
      { type: "hardState", group: G0, hardState: { term: 2, vote: nodeId(2), commit: 4 } },
      { type: "snapshot", group: G0, metadata: { index: 2, term: 1, confState: conf } },
    ]);
    await wal.close();
    const reopened = await openTestWal(fs);
    const asked: SnapshotMetadata[] = [];
    const storage = new WalLogStorage(reopened, G0, (metadata) => {
      asked.push(metadata);
      return new Uint8Array([9, 9]);
    });
    expect(storage.initialState()).toEqual({ hardState: { term: 2, vote: 2n, commit: 4 }, confState: conf });
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([3, 5]);
    expect([storage.term(2), storage.term(3), storage.term(5)]).toEqual([1, 2, 2]);
    expect(plain(storage.entries(3, 6, Number.MAX_SAFE_INTEGER))).toEqual(plain(makeEntries(0, 3, [2, 2, 2])));
    expect(storage.entries(3, 6, 1)).toHaveLength(1);
    expect(storage.snapshot()).toEqual({ metadata: { index: 2, term: 1, confState: conf }, data: new Uint8Array([9, 9]) });
    expect(asked).toEqual([{ index: 2, term: 1, confState: conf }]);
    expect(() => storage.entries(2, 4, 100)).toThrow(WalCompactedError);
    expect(() => storage.entries(3, 7, 100)).toThrow(WalUnavailableError);
    expect(() => storage.term(1)).toThrow(WalCompactedError);
    expect(() => storage.term(6)).toThrow(WalUnavailableError);
    await reopened.close();
  });
});
