import { describe, expect, it } from "vitest";
import { nodeId } from "../lib/ids.js";
import { encodeCommand, putRequest } from "../kv/mod.js";
import { ConfChangeTransition, ConfChangeType, confState } from "../raft/mod.js";
import { MemoryKvStore, installMemorySnapshot } from "../storage/memory-kv/mod.js";
import { AlarmKind, KvStateMachine, alarmCommand, kvCommandBytes, memberAttributesCommand, type InstallableStore } from "./kv-state-machine.js";
import { encodeMemberContext } from "./membership.js";

const text = (value: string) => new TextEncoder().encode(value);

function memoryStore(): InstallableStore {
  const store = new MemoryKvStore();
  return Object.assign(store, { installSnapshot: (stream: AsyncIterable<Uint8Array>) => installMemorySnapshot(store, stream) });
}

function addMember(machine: KvStateMachine, index: number, id: number, voters: number[], learner = false) {
  const member = { id: nodeId(id), name: `n${id}`, peerUrls: [`http://127.0.0.1:${2380 + id}`], clientUrls: [], isLearner: learner };
  return machine.apply([{
    kind: "conf-change", index, term: 1,
    change: { transition: ConfChangeTransition.Auto, changes: [{ type: learner ? ConfChangeType.AddLearner : ConfChangeType.AddNode, nodeId: nodeId(id) }], context: encodeMemberContext(member) },
    confState: confState(voters),
  }]);
}

describe("KvStateMachine (group 0)", () => {
  it("records members from conf changes and their published client URLs, and keeps them across a reopen", () => {
    const store = memoryStore();
    const machine = new KvStateMachine(store);
    addMember(machine, 1, 1, [1]);
    addMember(machine, 2, 2, [1, 2]);
    machine.apply([{ kind: "command", index: 3, term: 1, command: memberAttributesCommand(nodeId(2), "n2", ["http://127.0.0.1:2379"]) }]);
    expect(machine.members().map((member) => [member.id, member.name, member.clientUrls])).toEqual([[1n, "n1", []], [2n, "n2", ["http://127.0.0.1:2379"]]]);
    expect(machine.applied()).toEqual({ index: 3, term: 1, confState: confState([1, 2]) });
    const reopened = new KvStateMachine(store);
    expect(reopened.members()).toEqual(machine.members());
    expect(reopened.applied().confState).toEqual(confState([1, 2]));
  });

  it("applies key-value commands with their results, and skips entries it already applied", () => {
    const machine = new KvStateMachine(memoryStore());
    const put = kvCommandBytes(encodeCommand({ type: "put", request: putRequest(text("k"), text("v")) }));
    const [first] = machine.apply([{ kind: "command", index: 1, term: 1, command: put }]) as { revision: number }[];
    expect(first.revision).toBe(2);
    expect(machine.apply([{ kind: "command", index: 1, term: 1, command: put }])).toEqual([undefined]);
    expect(machine.mvcc.currentRevision()).toBe(2);
  });

  it("replicates alarms: raised and cleared by command, the same on every replica", () => {
    const machine = new KvStateMachine(memoryStore());
    machine.apply([{ kind: "command", index: 1, term: 1, command: alarmCommand(true, nodeId(7), AlarmKind.NoSpace) }]);
    expect(machine.hasAlarm(AlarmKind.NoSpace)).toBe(true);
    expect(machine.alarms()).toEqual([{ memberId: 7n, alarm: AlarmKind.NoSpace }]);
    machine.apply([{ kind: "command", index: 2, term: 1, command: alarmCommand(false, nodeId(7), AlarmKind.NoSpace) }]);
    expect(machine.hasAlarm(AlarmKind.NoSpace)).toBe(false);
  });

  it("ignores malformed group-0 records deterministically instead of failing the apply", () => {
    const machine = new KvStateMachine(memoryStore());
    const garbage = new Uint8Array([3, 0x7b, 0x7b]);
    expect(machine.apply([{ kind: "command", index: 1, term: 1, command: garbage }])).toHaveLength(1);
    expect(machine.alarms()).toEqual([]);
    expect(machine.applied().index).toBe(1);
  });

  it("installs a newer snapshot with its members, and refuses one that is not newer", async () => {
    const source = new KvStateMachine(memoryStore());
    addMember(source, 1, 1, [1]);
    source.apply([{ kind: "command", index: 2, term: 1, command: kvCommandBytes(encodeCommand({ type: "put", request: putRequest(text("a"), text("1")) })) }]);
    const target = new KvStateMachine(memoryStore());
    const image = source.snapshot();
    expect(image.position.index).toBe(2);
    expect(await target.installSnapshot(image.chunks)).toBe(true);
    expect(target.applied()).toEqual(source.applied());
    expect(target.members()).toEqual(source.members());
    expect(await target.installSnapshot(source.snapshot().chunks)).toBe(false);
  });
});
