import { describe, it, expect } from "vitest";
import { NO_NODE, type LogIndex, type NodeId, type Term } from "../../src/lib/ids.js";
import {
  MessageType, Role, RejectReason,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type RaftConfig, type RaftNode,
  type RaftStatus, type Ready, type Snapshot,
} from "../../src/raft/types.js";
import { runScenario, ScenarioError, type RaftImplementation, type ScenarioStorage } from "./interpreter.js";
import { parseScript, formatScript, ScriptSyntaxError } from "./script.js";

const emptyConf: ConfState = { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

/** Just enough storage for the fake node: entries in an array, no compaction. */
class FakeStorage implements ScenarioStorage {
  private entryList: Entry[] = [];
  private hard: HardState;
  private snap: Snapshot;
  constructor(initial: { confState?: ConfState; hardState?: HardState }) {
    this.hard = initial.hardState ?? { term: 0, vote: NO_NODE, commit: 0 };
    this.snap = { metadata: { index: 0, term: 0, confState: initial.confState ?? emptyConf }, data: new Uint8Array() };
  }
  initialState() { return { hardState: this.hard, confState: this.snap.metadata.confState }; }
  entries(low: LogIndex, high: LogIndex) { return this.entryList.slice(low - 1, high - 1); }
  term(index: LogIndex): Term { return index === 0 ? 0 : this.entryList[index - 1].term; }
  firstIndex() { return 1; }
  lastIndex() { return this.entryList.length; }
  snapshot() { return this.snap; }
  setHardState(hardState: HardState) { this.hard = hardState; }
  append(entries: readonly Entry[]) { this.entryList = [...this.entryList.slice(0, entries[0].index - 1), ...entries]; }
  applySnapshot(snapshot: Snapshot) { this.snap = snapshot; }
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array) {
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }
  compact() { /* the fake keeps every entry */ }
  bootstrap(confState: ConfState) { this.snap = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array() }; }
}

/**
 * A toy node, not Raft: campaign() makes it leader of the next term at once
 * and it tells its peers with heartbeats; a heartbeat makes the receiver a
 * follower that answers after "persisting". It exists to test the harness
 * (delivery, partitions, output, expectations) without the real core.
 */
class FakeNode implements RaftNode {
  readonly group;
  private role: Role = Role.Follower;
  private term: Term;
  private leader: NodeId = NO_NODE;
  private outbox: Message[] = [];
  private afterPersist: Message[] = [];
  private softChanged = false;
  constructor(private readonly config: RaftConfig) {
    this.group = config.group;
    this.term = config.storage.initialState().hardState.term;
  }
  get id() { return this.config.id; }
  private peers(): NodeId[] { return this.config.storage.initialState().confState.voters.filter((id) => id !== this.id); }
  private message(type: MessageType, to: NodeId): Message {
    return {
      type, group: this.group, to, from: this.id, term: this.term, logTerm: 0, index: 0, entries: [], commit: 0,
      snapshot: null, reject: false, rejectHint: 0, context: new Uint8Array(),
    };
  }
  tick() { /* time does nothing in the fake */ }
  campaign() {
    this.term++;
    this.role = Role.Leader;
    this.leader = this.id;
    this.softChanged = true;
    for (const peer of this.peers()) this.outbox.push(this.message(MessageType.Heartbeat, peer));
  }
  step(message: Message) {
    if (message.type !== MessageType.Heartbeat) return;
    this.term = message.term;
    this.role = Role.Follower;
    this.leader = message.from;
    this.softChanged = true;
    this.afterPersist.push(this.message(MessageType.HeartbeatResp, message.from));
  }
  propose() {
    if (this.role === Role.Leader) return { ok: true as const, index: 1, term: this.term };
    return { ok: false as const, reason: this.leader === NO_NODE ? RejectReason.NoLeader : RejectReason.NotLeader, leader: this.leader };
  }
  proposeConfChange() { return this.propose(); }
  proposeOrForward() { return this.propose(); }
  proposeConfChangeOrForward() { return this.propose(); }
  readIndex() { return { ok: true as const }; }
  transferLeadership() { /* not modelled */ }
  applyConfChange(_change: ConfChange) { return emptyConf; }
  reportUnreachable() { /* not modelled */ }
  reportSnapshot() { /* not modelled */ }
  hasReady() { return this.softChanged || this.outbox.length > 0 || this.afterPersist.length > 0; }
  ready(): Ready {
    const ready: Ready = {
      softState: this.softChanged ? { role: this.role, leader: this.leader } : null,
      hardState: this.softChanged ? { term: this.term, vote: NO_NODE, commit: 0 } : null,
      entries: [], snapshot: null, committedEntries: [], messages: this.outbox, messagesAfterPersist: this.afterPersist,
      readStates: [], mustSync: this.softChanged,
    };
    this.outbox = [];
    this.afterPersist = [];
    this.softChanged = false;
    return ready;
  }
  advance() { /* nothing outstanding in the fake */ }
  status(): RaftStatus {
    return {
      id: this.id, group: this.group, term: this.term, vote: NO_NODE, commit: 0, applied: 0, lastIndex: 0, role: this.role,
      leader: this.leader, leadTransferee: NO_NODE, config: this.config.storage.initialState().confState, progress: new Map(),
    };
  }
}

const fake: RaftImplementation = {
  createStorage: (initial) => new FakeStorage(initial),
  createNode: (config) => new FakeNode(config),
  encodeConfChange: () => new Uint8Array(),
  decodeConfChange: () => ({ transition: 0, changes: [], context: new Uint8Array() }),
};

describe("the scenario script format", () => {
  it("parses commands with bare, named and list arguments", () => {
    const [item] = parseScript("add-nodes 3 voters=(1,2,3) prevote=true |\n");
    expect(item.kind).toBe("command");
    if (item.kind !== "command") return;
    expect(item.command.name).toBe("add-nodes");
    expect(item.command.arguments).toEqual([
      { key: "3", values: [], named: false },
      { key: "voters", values: ["1", "2", "3"], named: true },
      { key: "prevote", values: ["true"], named: true },
      { key: "|", values: [], named: false },
    ]);
  });

  it("keeps comments and blank lines and reads recorded output up to the next blank line", () => {
    const text = "# a story\ncampaign 1\n----\nline one\nline two\n\nstabilize\n";
    const items = parseScript(text);
    expect(items.map((item) => item.kind)).toEqual(["text", "command", "text", "command"]);
    const second = items[1];
    expect(second.kind === "command" && second.recordedOutput).toEqual(["line one", "line two"]);
    expect(formatScript(items, new Map())).toBe(text);
  });

  it("adds the blank line that ends an output block when the script had none", () => {
    const items = parseScript("heal\nheal\n");
    const commands = items.flatMap((item) => (item.kind === "command" ? [item.command] : []));
    const rendered = formatScript(items, new Map(commands.map((command) => [command, ["ok"]])));
    expect(rendered).toBe("heal\n----\nok\n\nheal\n----\nok\n");
    expect(parseScript(rendered).filter((item) => item.kind === "command")).toHaveLength(2);
  });

  it("rejects malformed lines with their line number", () => {
    expect(() => parseScript("heal\n----\nok\n\n----\n")).toThrow(ScriptSyntaxError);
    expect(() => parseScript("\n\nAdd-Nodes 3\n")).toThrow(/line 3: bad command name/);
    expect(() => parseScript("add-nodes 3 voters=(1,2\n")).toThrow(/unclosed list/);
    expect(() => parseScript("add-nodes 3 voters=(1,,2)\n")).toThrow(/empty list element/);
    // Words split at spaces, so a list may not contain one.
    expect(() => parseScript("add-nodes 3 voters=(1, 2)\n")).toThrow(/unclosed list/);
    expect(() => parseScript("propose 1 =x\n")).toThrow(/has no name/);
    expect(() => parseScript("propose 1 x=\n")).toThrow(/has no value/);
  });
});

describe("the scenario harness", () => {
  it("delivers messages in order and prints each Ready as a story", () => {
    const result = runScenario("add-nodes 2 voters=(1,2)\ncampaign 1\nstabilize\nexpect leader 1\nexpect knows-leader 2 1\n", fake);
    expect(result.failures).toEqual([]);
    expect(result.rendered).toContain("campaign 1\n----\nstate 1: leader term=1 leader=1\n");
    expect(result.rendered).toContain("ready 1: leader leader=1; term=1 vote=0 commit=0 (sync)\n  send 1->2 Heartbeat term=1 commit=0\n");
    expect(result.rendered).toContain("  send after persist 2->1 HeartbeatResp term=1\n");
  });

  it("drops messages on cut links and reports it", () => {
    const result = runScenario("add-nodes 3 voters=(1,2,3)\npartition 1 | 3\ncampaign 1\nstabilize\nexpect knows-leader 3 1\n", fake);
    expect(result.rendered).toContain("cut links: 1->3 3->1\n");
    expect(result.rendered).toContain("drop 1->3 Heartbeat term=1 commit=0 (link cut)\n");
    expect(result.failures).toEqual(["line 5: expect knows-leader 3 1: node 3 believes the leader is 0"]);
  });

  it("drops messages to a crashed node and brings it back from storage", () => {
    const script = "add-nodes 2 voters=(1,2)\ncrash 2\ncampaign 1\nstabilize\nrestart 2\nexpect term 2 0\nexpect role 2 follower\n";
    const result = runScenario(script, fake);
    expect(result.rendered).toContain("(2 is down)");
    expect(result.failures).toEqual([]);
  });

  it("delivers or drops only the messages a filter selects", () => {
    const script = "add-nodes 3 voters=(1,2,3)\ncampaign 1\nprocess-ready 1\ndeliver-msgs to=3 drop\ndeliver-msgs type=Heartbeat\n";
    const result = runScenario(script, fake);
    expect(result.rendered).toContain("deliver-msgs to=3 drop\n----\ndrop 1->3 Heartbeat term=1 commit=0 (by the script)\n");
    expect(result.rendered).toContain("deliver-msgs type=Heartbeat\n----\ndeliver 1->2 Heartbeat term=1 commit=0\nstate 2: follower term=1 leader=1\n");
  });

  it("records a failed expectation with its line and a clear reason, and keeps going", () => {
    const script = "add-nodes 2 voters=(1,2)\nexpect leader 1\nexpect term 2 5\nexpect refused 2 no-leader\ncampaign 1\nexpect refused 1 not-leader\n";
    const result = runScenario(script, fake);
    expect(result.failures).toEqual([
      "line 2: expect leader 1: node 1 is follower at term 0 (leader known to it: 0)",
      "line 3: expect term 2 5: node 2 has term 0",
      "line 6: expect refused 1 not-leader: node 1 accepted the proposal at 1:1",
    ]);
    expect(result.rendered).toContain("expect term 2 5\n----\nFAILED: node 2 has term 0\n");
  });

  it("checks the refusal reason and the leader hint", () => {
    const script = "add-nodes 2 voters=(1,2)\ncampaign 1\nstabilize\nexpect refused 2 not-leader leader=1\nexpect refused 2 not-leader leader=2\nexpect refused 2 no-leader\n";
    const result = runScenario(script, fake);
    expect(result.failures).toEqual([
      "line 5: expect refused 2 not-leader leader=2: refused with leader hint 1",
      "line 6: expect refused 2 no-leader: refused with reason not-leader",
    ]);
  });

  it("compares persisted logs", () => {
    const script = "add-nodes 3 voters=(1,2,3)\nlog 1 terms=(1,1,2)\nlog 2 1:1 1:2 2:3\nlog 3 1:1 2:2\nexpect log-equal 1 2\nexpect log-equal 1 3\n";
    const result = runScenario(script, fake);
    expect(result.rendered).toContain("node 1: term=2 vote=0 commit=0 log=1:1 1:2 2:3\n");
    expect(result.failures).toEqual(["line 6: expect log-equal 1 3: logs of 1 and 3 differ: last index 3 vs 2"]);
  });

  it("refuses bad input with the line number instead of guessing", () => {
    const cases: [string, RegExp][] = [
      ["frobnicate 1\n", /line 1: unknown command "frobnicate"/],
      ["add-nodes 1\ncampaign 9\n", /line 2: .*no node 9/],
      ["add-nodes 1\nexpect sunshine 1\n", /unknown expectation "sunshine"/],
      ["add-nodes 1\ntick 1 5000\n", /tick count must be in/],
      ["add-nodes 1\nlog 1 1:1 1:3\n", /contiguous from index 1/],
      ["add-nodes 1\nlog 1 2:1 1:2\n", /never decrease/],
      ["add-nodes 1\nlog 1 1:1 term=0\n", /below the last entry's term/],
      ["add-nodes 2\npartition 1 2\n", /groups separated by \|/],
      ["add-nodes 2\ncut 1-2\n", /not a link like 1->2/],
      ["add-nodes 2\nrestart 1\n", /is not down/],
      ["add-nodes 2 prevote=maybe\n", /prevote= must be true or false/],
      ["add-nodes 2\npropose-conf-change 1 add=3 leave-joint\n", /exactly one of them/],
      ["add-nodes 2\npropose-conf-change 1 promote=3\n", /unknown change "promote"/],
      ["add-nodes 2\ndeliver-msgs type=Gossip\n", /unknown message type/],
      ["add-nodes 1\ncrash 1\npropose 1 x\n", /node 1 is down/],
      ["add-nodes 1\nexpect append-rejects 1 3\n", /at-most/],
    ];
    for (const [script, pattern] of cases) {
      expect(() => runScenario(script, fake), script).toThrow(ScenarioError);
      expect(() => runScenario(script, fake), script).toThrow(pattern);
    }
  });
});
