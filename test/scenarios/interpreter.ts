/**
 * A deterministic, step-by-step harness for Raft scenario scripts (see
 * script.ts for the format). Nothing here is random: messages wait in one
 * ordered in-flight list until a command delivers them, Ready batches are
 * handled only when a command says so, and each node's election-timeout PRNG
 * is seeded from its id. The output of every command is a compact account of
 * what happened (Ready batches, messages, state changes), so a golden file
 * reads as the story of the scenario; `expect ...` commands are the
 * assertions and are collected as failures.
 *
 * The harness drives the core only through the RaftNode interface of
 * src/raft/types.ts; the implementation (RawNode, MemoryStorage, the conf
 * change codec) is injected, so this file does not depend on its internals.
 */
import { assert } from "../../src/lib/assert.js";
import { NO_NODE, nodeId, groupId, type LogIndex, type NodeId, type Term } from "../../src/lib/ids.js";
import { createPrng } from "../../src/lib/prng.js";
import {
  ConfChangeTransition, ConfChangeType, EntryType, MESSAGE_TYPE_NAMES, MessageType, ROLE_NAMES, Role,
  type ConfChange, type ConfChangeSingle, type ConfState, type Entry, type HardState, type LogStorage,
  type Message, type RaftConfig, type RaftNode, type Ready, type RejectReason, type Snapshot,
} from "../../src/raft/types.js";
import { parseScript, formatScript, type Argument, type Command } from "./script.js";

/** The writes the harness needs from a storage, beyond what the core reads (MemoryStorage has them). */
export interface ScenarioStorage extends LogStorage {
  setHardState(hardState: HardState): void;
  append(entries: readonly Entry[]): void;
  applySnapshot(snapshot: Snapshot): void;
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot;
  compact(index: LogIndex): void;
  /** A brand-new member of a new cluster: the membership as committed ConfChange entries 1..n at term 1. */
  bootstrap(confState: ConfState): void;
}

/** The Raft implementation under test. */
export interface RaftImplementation {
  createStorage(initial: { confState?: ConfState; hardState?: HardState }): ScenarioStorage;
  createNode(config: RaftConfig): RaftNode;
  encodeConfChange(change: ConfChange): Uint8Array;
  decodeConfChange(data: Uint8Array): ConfChange;
}

export class ScenarioError extends Error {
  override name = "ScenarioError";
  constructor(message: string, readonly lineNumber: number, options?: { cause?: unknown }) {
    super(`line ${lineNumber}: ${message}`, options);
  }
}

/** Rounds of "handle every Ready, deliver every message" before stabilize gives up: a livelock, not a scenario. */
export const STABILIZE_ROUNDS_MAX = 200;
/** Ticks one command may run. */
export const TICKS_PER_COMMAND_MAX = 1_000;
export const NODES_MAX = 16;
const DEFAULT_ELECTION_TICKS = 10;
const DEFAULT_HEARTBEAT_TICKS = 1;
const GROUP = groupId(0);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface AppliedCommand {
  readonly index: LogIndex;
  readonly data: string;
}

interface NodeOptions {
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnly: "safe" | "lease";
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly messageBytesMax: number | undefined;
  readonly inflightMessagesMax: number | undefined;
  readonly entryBytesMax: number | undefined;
}

interface NodeHarness {
  readonly id: NodeId;
  readonly options: NodeOptions;
  readonly bootConfState: ConfState;
  node: RaftNode;
  storage: ScenarioStorage;
  down: boolean;
  /** The state machine: applied commands (non-empty Normal entries). Survives a crash, like an LMDB store with its applied index. */
  stateMachine: AppliedCommand[];
  applied: LogIndex;
  /** Membership as of each applied conf change (and the boot config at index 0), for building snapshots. */
  confHistory: { index: LogIndex; confState: ConfState }[];
  readStates: { index: LogIndex; context: string }[];
  appendRejectsSent: number;
}

interface Observed {
  role: Role;
  term: Term;
  leader: NodeId;
}

export interface ScenarioResult {
  /** The script with every command's actual output, ready to compare with (or write over) the golden file. */
  readonly rendered: string;
  /** Failed `expect` commands, each with its line number. */
  readonly failures: readonly string[];
}

/** Runs a whole script and renders it with the actual output. Syntax and usage errors throw; failed expectations are collected. */
export function runScenario(text: string, implementation: RaftImplementation): ScenarioResult {
  const items = parseScript(text);
  const harness = new ScenarioHarness(implementation);
  const outputs = new Map<Command, readonly string[]>();
  for (const item of items) {
    if (item.kind !== "command") continue;
    outputs.set(item.command, harness.execute(item.command));
  }
  return { rendered: formatScript(items, outputs), failures: harness.failures };
}

/**
 * For cores with a planted fault: runs until the script ends or the broken
 * core wedges the harness (a cluster that never settles), and returns the
 * failed expectations seen until then plus what stopped the run.
 */
export function collectFailures(text: string, implementation: RaftImplementation): readonly string[] {
  const harness = new ScenarioHarness(implementation);
  for (const item of parseScript(text)) {
    if (item.kind !== "command") continue;
    try {
      harness.execute(item.command);
    } catch (error) {
      return [...harness.failures, `stopped: ${(error as Error).message}`];
    }
  }
  return harness.failures;
}

export class ScenarioHarness {
  readonly failures: string[] = [];
  private readonly nodes = new Map<NodeId, NodeHarness>();
  private inFlight: Message[] = [];
  private readonly cutLinks = new Set<string>();
  private output: string[] = [];
  private ticks = 0;

  constructor(private readonly implementation: RaftImplementation) {}

  /** Runs one command and returns its output lines (never empty: "ok" when nothing happened). */
  execute(command: Command): string[] {
    this.output = [];
    const before = this.observeAll();
    try {
      this.dispatch(command);
    } catch (error) {
      if (error instanceof ScenarioError) throw error;
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new ScenarioError(`${command.text}: ${message}`, command.lineNumber, { cause: error });
    }
    if (!QUIET_ABOUT_STATE.has(command.name)) this.printStateChanges(before);
    return this.output.length === 0 ? ["ok"] : this.output;
  }

  private dispatch(command: Command): void {
    const handler = COMMANDS[command.name];
    if (handler === undefined) throw new ScenarioError(`unknown command "${command.name}"`, command.lineNumber);
    handler.call(this, new Arguments(command));
  }

  // ---- setup ---------------------------------------------------------------

  addNodes(args: Arguments): void {
    const count = args.positionalInteger(0, "node count");
    if (count < 1 || this.nodes.size + count > NODES_MAX) throw args.error(`node count must keep the cluster within 1..${NODES_MAX}`);
    const voters = args.nodeList("voters");
    const learners = args.nodeList("learners");
    const bootConfState: ConfState = {
      voters, votersOutgoing: [], learners, learnersNext: [], autoLeave: false,
    };
    const options: NodeOptions = {
      preVote: args.boolean("prevote", false),
      checkQuorum: args.boolean("checkquorum", false),
      readOnly: args.choice("read-only", ["safe", "lease"], "safe"),
      electionTicks: args.integer("election", DEFAULT_ELECTION_TICKS),
      heartbeatTicks: args.integer("heartbeat", DEFAULT_HEARTBEAT_TICKS),
      messageBytesMax: args.optionalInteger("max-msg-bytes"),
      inflightMessagesMax: args.optionalInteger("max-inflight"),
      entryBytesMax: args.optionalInteger("max-entry-bytes"),
    };
    const firstId = this.nodes.size + 1;
    for (let offset = 0; offset < count; offset++) {
      const id = nodeId(firstId + offset);
      const member = voters.includes(id) || learners.includes(id);
      const conf = member ? bootConfState : emptyConf();
      // The initial membership goes into the log (as a real cluster boots), so
      // members added later learn it by replaying the log or from a snapshot.
      const storage = this.implementation.createStorage({});
      if (member) storage.bootstrap(conf);
      const harness: NodeHarness = {
        id, options, bootConfState: conf, storage, down: false, stateMachine: [], applied: 0,
        confHistory: [{ index: 0, confState: emptyConf() }], readStates: [], appendRejectsSent: 0,
        node: undefined as unknown as RaftNode,
      };
      harness.node = this.createNode(harness);
      this.nodes.set(id, harness);
      if (member) this.applyBootstrap(harness);
      this.print(`node ${id}: ${member ? `${formatConf(conf)} (log 1..${harness.applied} applied)` : "joining (no configuration)"}`);
    }
  }

  /**
   * A new member applies its bootstrap entries before anything else happens
   * (a node with membership changes still to apply may not campaign), so a
   * script starts from a cluster whose members know each other.
   */
  private applyBootstrap(harness: NodeHarness): void {
    const saved = this.output;
    this.output = [];
    while (harness.node.hasReady()) {
      this.handleReady(harness);
      assert(this.inFlight.length === 0, () => `node ${harness.id} sent messages while booting`);
    }
    this.output = saved;
  }

  /**
   * Replaces a node's log with the given entries (term:index words or
   * terms=(...)) and restarts it from that log. The membership given to
   * add-nodes becomes the node's snapshot at index 0 here, so that the log
   * holds exactly the entries the script names (as in the paper's figures).
   */
  log(args: Arguments): void {
    const harness = this.node(args.positionalNode(0));
    const entries = this.entriesFromArguments(args);
    const lastTerm = entries.at(-1)?.term ?? 0;
    const term = args.integer("term", lastTerm);
    const commit = args.integer("commit", 0);
    if (term < lastTerm) throw args.error(`term=${term} is below the last entry's term ${lastTerm}`);
    if (commit > entries.length) throw args.error(`commit=${commit} is beyond the last index ${entries.length}`);
    const vote = args.optionalNode("vote") ?? NO_NODE;
    harness.storage = this.implementation.createStorage({ confState: harness.bootConfState, hardState: { term, vote, commit } });
    if (entries.length > 0) harness.storage.append(entries);
    harness.stateMachine = [];
    harness.applied = 0;
    harness.confHistory = [{ index: 0, confState: harness.bootConfState }];
    harness.down = false;
    harness.node = this.createNode(harness);
    this.print(`node ${harness.id}: term=${term} vote=${vote} commit=${commit} log=${formatEntries(entries, this.implementation) || "(empty)"}`);
  }

  private entriesFromArguments(args: Arguments): Entry[] {
    const terms = args.has("terms") ? args.named("terms").map((value) => parseInteger(value, args)) : null;
    const words = args.positionals().slice(1);
    if (terms !== null && words.length > 0) throw args.error("give either terms=(...) or term:index words, not both");
    const pairs = terms !== null
      ? terms.map((term, position) => ({ term, index: position + 1 }))
      : words.map((word) => {
          const match = /^(\d+):(\d+)$/.exec(word);
          if (match === null) throw args.error(`log entry "${word}" is not term:index`);
          return { term: Number(match[1]), index: Number(match[2]) };
        });
    let previousTerm = 0;
    return pairs.map(({ term, index }, position) => {
      if (index !== position + 1) throw args.error(`log entries must be contiguous from index 1; got index ${index} at position ${position + 1}`);
      if (term < previousTerm || term < 1) throw args.error(`log entry terms must be positive and never decrease; got ${term} at index ${index}`);
      previousTerm = term;
      return { term, index, type: EntryType.Normal, data: encoder.encode(`${term}:${index}`) };
    });
  }

  private createNode(harness: NodeHarness): RaftNode {
    const { options } = harness;
    return this.implementation.createNode({
      id: harness.id,
      group: GROUP,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      storage: harness.storage,
      applied: harness.applied,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      readOnly: options.readOnly,
      messageBytesMax: options.messageBytesMax,
      inflightMessagesMax: options.inflightMessagesMax,
      entryBytesMax: options.entryBytesMax,
      random: createPrng(Number(harness.id)),
    });
  }

  // ---- time and the Ready loop ---------------------------------------------

  tick(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    const count = this.tickCount(args, args.positionalCount() > 1 ? args.positionalInteger(1, "tick count") : 1);
    for (let tick = 0; tick < count; tick++) harness.node.tick();
  }

  tickAll(args: Arguments): void {
    const count = this.tickCount(args, args.positionalCount() > 0 ? args.positionalInteger(0, "tick count") : 1);
    for (let tick = 0; tick < count; tick++) {
      for (const harness of this.liveNodes()) harness.node.tick();
    }
  }

  /** Simulated time: each tick, every live node ticks and then the cluster settles; only state changes are printed. */
  run(args: Arguments): void {
    const count = this.tickCount(args, args.positionalInteger(0, "tick count"));
    for (let tick = 0; tick < count; tick++) {
      this.ticks++;
      const before = this.observeAll();
      for (const harness of this.liveNodes()) harness.node.tick();
      const saved = this.output;
      this.output = [];
      this.settle(args);
      this.output = saved;
      this.printStateChanges(before, `tick ${this.ticks}: `);
    }
  }

  private tickCount(args: Arguments, count: number): number {
    if (count < 1 || count > TICKS_PER_COMMAND_MAX) throw args.error(`tick count must be in 1..${TICKS_PER_COMMAND_MAX}`);
    return count;
  }

  stabilize(args: Arguments): void {
    if (args.has("quiet") || args.hasWord("quiet")) {
      const before = this.observeAll();
      const saved = this.output;
      this.output = [];
      this.settle(args);
      this.output = saved;
      this.printStateChanges(before);
      return;
    }
    this.settle(args);
  }

  private settle(args: Arguments): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      let progressed = false;
      for (const harness of this.liveNodes()) {
        if (harness.node.hasReady()) {
          this.handleReady(harness);
          progressed = true;
        }
      }
      if (this.inFlight.length > 0) {
        const batch = this.inFlight;
        this.inFlight = [];
        for (const message of batch) this.deliver(message, false);
        progressed = true;
      }
      if (!progressed) return;
    }
    throw args.error(`the cluster did not settle within ${STABILIZE_ROUNDS_MAX} rounds`);
  }

  processReady(args: Arguments): void {
    const ids = args.positionals().map((_, position) => args.positionalNode(position));
    if (ids.length === 0) throw args.error("name at least one node");
    for (const id of ids) {
      const harness = this.liveNode(id);
      if (!harness.node.hasReady()) {
        this.print(`ready ${id}: nothing to do`);
        continue;
      }
      this.handleReady(harness);
    }
  }

  /** Performs one Ready in the order types.ts prescribes: send, persist, send after persist, apply, advance. */
  private handleReady(harness: NodeHarness): void {
    const ready = harness.node.ready();
    this.print(`ready ${harness.id}:${formatReadyHeader(ready)}`);
    for (const message of ready.messages) this.send(harness, message, "send");
    if (ready.snapshot !== null) {
      harness.storage.applySnapshot(ready.snapshot);
      this.print(`  persist snapshot ${formatSnapshot(ready.snapshot)}`);
    }
    if (ready.entries.length > 0) {
      harness.storage.append(ready.entries);
      this.print(`  persist ${formatEntries(ready.entries, this.implementation)}`);
    }
    if (ready.hardState !== null) harness.storage.setHardState(ready.hardState);
    for (const message of ready.messagesAfterPersist) this.send(harness, message, "send after persist");
    if (ready.snapshot !== null) this.restoreStateMachine(harness, ready.snapshot);
    if (ready.committedEntries.length > 0) {
      this.print(`  apply ${formatEntries(ready.committedEntries, this.implementation)}`);
      for (const entry of ready.committedEntries) this.applyEntry(harness, entry);
    }
    for (const readState of ready.readStates) {
      const context = decoder.decode(readState.context);
      harness.readStates.push({ index: readState.index, context });
      this.print(`  read state index=${readState.index} context=${context}`);
    }
    harness.node.advance();
  }

  private send(harness: NodeHarness, message: Message, label: string): void {
    assert(message.from === harness.id, () => `node ${harness.id} sent a message from ${message.from}`);
    if (message.type === MessageType.AppResp && message.reject) harness.appendRejectsSent++;
    this.print(`  ${label} ${formatMessage(message, this.implementation)}`);
    this.inFlight.push(message);
  }

  private restoreStateMachine(harness: NodeHarness, snapshot: Snapshot): void {
    const image = decodeImage(snapshot.data);
    harness.stateMachine = image;
    harness.applied = snapshot.metadata.index;
    harness.confHistory = [{ index: snapshot.metadata.index, confState: snapshot.metadata.confState }];
    this.print(`  restore state machine at ${snapshot.metadata.index}: ${image.length} commands`);
  }

  private applyEntry(harness: NodeHarness, entry: Entry): void {
    assert(entry.index === harness.applied + 1, () => `node ${harness.id} applies ${entry.index} after ${harness.applied}`);
    harness.applied = entry.index;
    if (entry.type === EntryType.ConfChange) {
      const confState = harness.node.applyConfChange(this.implementation.decodeConfChange(entry.data));
      harness.confHistory.push({ index: entry.index, confState });
      this.print(`  config ${harness.id} at ${entry.index}: ${formatConf(confState)}`);
    } else if (entry.data.length > 0) {
      harness.stateMachine.push({ index: entry.index, data: decoder.decode(entry.data) });
    }
  }

  // ---- the network ---------------------------------------------------------

  private deliver(message: Message, announce: boolean): void {
    const description = formatMessage(message, this.implementation);
    const target = this.nodes.get(message.to);
    const sender = this.nodes.get(message.from);
    let reason: string | null = null;
    if (target === undefined) reason = `no node ${message.to}`;
    else if (target.down) reason = `${message.to} is down`;
    else if (this.cutLinks.has(linkName(message.from, message.to))) reason = "link cut";
    if (reason !== null) {
      this.print(`drop ${description} (${reason})`);
      // The transport knows when a snapshot did not get through and says so; plain messages are lost silently.
      if (message.type === MessageType.Snap && sender !== undefined && !sender.down) sender.node.reportSnapshot(message.to, false);
      return;
    }
    assert(target !== undefined);
    if (announce) this.print(`deliver ${description}`);
    target.node.step(message);
    if (message.type === MessageType.Snap && sender !== undefined && !sender.down) sender.node.reportSnapshot(message.to, true);
  }

  deliverMessages(args: Arguments): void {
    const from = args.optionalNode("from");
    const to = args.optionalNode("to");
    const typeName = args.has("type") ? args.single("type") : null;
    if (typeName !== null && !Object.hasOwn(MessageType, typeName)) throw args.error(`unknown message type "${typeName}"`);
    const drop = args.hasWord("drop");
    const matches = (message: Message): boolean =>
      (from === undefined || message.from === from) && (to === undefined || message.to === to) &&
      (typeName === null || MESSAGE_TYPE_NAMES[message.type] === typeName);
    const selected = this.inFlight.filter(matches);
    this.inFlight = this.inFlight.filter((message) => !matches(message));
    if (selected.length === 0) this.print("no messages match");
    for (const message of selected) {
      if (drop) this.print(`drop ${formatMessage(message, this.implementation)} (by the script)`);
      else this.deliver(message, true);
    }
  }

  partition(args: Arguments): void {
    const groups: NodeId[][] = [[]];
    for (const [position, word] of args.positionals().entries()) {
      if (word === "|") groups.push([]);
      else groups[groups.length - 1].push(args.positionalNode(position));
    }
    if (groups.length < 2 || groups.some((group) => group.length === 0)) throw args.error("partition needs groups separated by |, e.g. partition 1 | 2 3");
    for (const [position, group] of groups.entries()) {
      for (const other of groups.slice(position + 1)) {
        for (const a of group) {
          for (const b of other) {
            this.cutLinks.add(linkName(a, b));
            this.cutLinks.add(linkName(b, a));
          }
        }
      }
    }
    this.print(`cut links: ${[...this.cutLinks].sort().join(" ")}`);
  }

  cut(args: Arguments): void {
    if (args.positionalCount() === 0) throw args.error("name links, e.g. cut 1->2");
    for (const word of args.positionals()) {
      const match = /^(\d+)->(\d+)$/.exec(word);
      if (match === null) throw args.error(`"${word}" is not a link like 1->2`);
      const from = this.node(nodeId(match[1])).id;
      const to = this.node(nodeId(match[2])).id;
      this.cutLinks.add(linkName(from, to));
    }
    this.print(`cut links: ${[...this.cutLinks].sort().join(" ")}`);
  }

  heal(): void {
    this.cutLinks.clear();
    this.print("all links restored");
  }

  crash(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    harness.down = true;
    this.print(`node ${harness.id} crashed (storage kept: term=${harness.storage.initialState().hardState.term} last index=${harness.storage.lastIndex()})`);
  }

  restart(args: Arguments): void {
    const harness = this.node(args.positionalNode(0));
    if (!harness.down) throw args.error(`node ${harness.id} is not down`);
    harness.down = false;
    harness.node = this.createNode(harness);
    this.print(`node ${harness.id} restarted from storage (applied=${harness.applied})`);
  }

  // ---- requests ------------------------------------------------------------

  propose(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    const data = encoder.encode(args.positional(1, "data"));
    if (!args.hasWord("forward")) {
      this.print(formatProposeResult(harness.node.propose(data)));
      return;
    }
    const result = harness.node.proposeOrForward(data);
    // A forwarded command has no index yet: the caller learns its fate when (and if) it is applied.
    this.print(result.ok && result.index === 0 ? `forwarded to ${harness.node.status().leader}` : formatProposeResult(result));
  }

  proposeConfChange(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    const change = this.confChangeFromArguments(args);
    this.print(formatProposeResult(harness.node.proposeConfChange(change)));
  }

  private confChangeFromArguments(args: Arguments): ConfChange {
    const transitions: Record<string, ConfChangeTransition> = {
      auto: ConfChangeTransition.Auto,
      "joint-implicit": ConfChangeTransition.JointImplicit,
      "joint-explicit": ConfChangeTransition.JointExplicit,
    };
    const changeTypes: Record<string, ConfChangeType> = {
      add: ConfChangeType.AddNode,
      "add-learner": ConfChangeType.AddLearner,
      remove: ConfChangeType.RemoveNode,
    };
    const transitionName = args.has("transition") ? args.single("transition") : "auto";
    const transition = transitions[transitionName];
    if (transition === undefined) throw args.error(`transition must be one of ${Object.keys(transitions).join(", ")}`);
    const changes: ConfChangeSingle[] = [];
    for (const argument of args.all()) {
      if (!argument.named || argument.key === "transition") continue;
      const type = changeTypes[argument.key];
      if (type === undefined) throw args.error(`unknown change "${argument.key}" (use add=, add-learner=, remove=)`);
      for (const value of argument.values) changes.push({ type, nodeId: nodeId(parseInteger(value, args)) });
    }
    const leaveJoint = args.positionals().slice(1).includes("leave-joint");
    if (leaveJoint === (changes.length > 0)) throw args.error("give changes (add=, add-learner=, remove=) or leave-joint, exactly one of them");
    return { transition, changes, context: new Uint8Array(0) };
  }

  transferLeadership(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    harness.node.transferLeadership(args.positionalNode(1));
    const transferee = harness.node.status().leadTransferee;
    this.print(transferee === NO_NODE ? "no transfer in progress" : `transferring leadership to ${transferee}`);
  }

  readIndex(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    const result = harness.node.readIndex(encoder.encode(args.positional(1, "context")));
    this.print(result.ok ? "read requested" : `refused: ${result.reason} (leader ${result.leader})`);
  }

  campaign(args: Arguments): void {
    this.liveNode(args.positionalNode(0)).node.campaign();
  }

  compact(args: Arguments): void {
    const harness = this.liveNode(args.positionalNode(0));
    const index = args.positionalInteger(1, "index");
    if (index > harness.applied) throw args.error(`node ${harness.id} has applied only up to ${harness.applied}; cannot snapshot at ${index}`);
    const confState = [...harness.confHistory].reverse().find((record) => record.index <= index)?.confState;
    if (confState === undefined) throw args.error(`no membership known at ${index} (older than node ${harness.id}'s snapshot)`);
    const image = encodeImage(harness.stateMachine.filter((command) => command.index <= index));
    const snapshot = harness.storage.createSnapshot(index, confState, image);
    harness.storage.compact(index);
    this.print(`node ${harness.id}: snapshot ${formatSnapshot(snapshot)}; log now starts at ${harness.storage.firstIndex()}`);
  }

  // ---- inspection ----------------------------------------------------------

  status(args: Arguments): void {
    const harness = this.node(args.positionalNode(0));
    const status = harness.node.status();
    this.print(`${status.id}: ${ROLE_NAMES[status.role]} term=${status.term} vote=${status.vote} leader=${status.leader} ` +
      `commit=${status.commit} applied=${status.applied} last=${status.lastIndex}` +
      (status.leadTransferee === NO_NODE ? "" : ` transferee=${status.leadTransferee}`) + (harness.down ? " (down)" : ""));
    this.print(`  config ${formatConf(status.config)}`);
    for (const [peer, progress] of [...status.progress].sort(([a], [b]) => (a < b ? -1 : 1))) {
      this.print(`  progress ${peer}: ${progress.state} match=${progress.match} next=${progress.next}${progress.learner ? " learner" : ""}`);
    }
  }

  raftLog(args: Arguments): void {
    const harness = this.node(args.positionalNode(0));
    this.print(formatStorage(harness.storage, this.implementation));
  }

  // ---- assertions ----------------------------------------------------------

  expect(args: Arguments): void {
    const what = args.positional(0, "what to expect");
    const check = EXPECTATIONS[what];
    if (check === undefined) throw args.error(`unknown expectation "${what}"`);
    const problem = check.call(this, args);
    if (problem === null) return;
    const failure = `line ${args.command.lineNumber}: expect ${args.command.text.slice("expect ".length)}: ${problem}`;
    this.failures.push(failure);
    this.print(`FAILED: ${problem}`);
  }

  expectLeader(args: Arguments): string | null {
    const id = args.positionalNode(1);
    const harness = this.liveNode(id);
    const status = harness.node.status();
    if (status.role !== Role.Leader) return `node ${id} is ${ROLE_NAMES[status.role]} at term ${status.term} (leader known to it: ${status.leader})`;
    for (const other of this.liveNodes()) {
      const otherStatus = other.node.status();
      if (other.id !== id && otherStatus.role === Role.Leader && otherStatus.term >= status.term) {
        return `node ${other.id} is also leader at term ${otherStatus.term}`;
      }
    }
    return null;
  }

  expectNoLeader(): string | null {
    const leaders = this.liveNodes().filter((harness) => harness.node.status().role === Role.Leader);
    return leaders.length === 0 ? null : `leaders: ${leaders.map((harness) => `${harness.id} (term ${harness.node.status().term})`).join(", ")}`;
  }

  expectRole(args: Arguments): string | null {
    const harness = this.liveNode(args.positionalNode(1));
    const wanted = args.positional(2, "role");
    if (!Object.values(ROLE_NAMES).includes(wanted)) throw args.error(`unknown role "${wanted}"`);
    const actual = ROLE_NAMES[harness.node.status().role];
    return actual === wanted ? null : `node ${harness.id} is ${actual}`;
  }

  expectNumber(args: Arguments, label: string, read: (harness: NodeHarness) => number): string | null {
    const harness = this.node(args.positionalNode(1));
    const wanted = args.positionalInteger(2, label);
    const actual = read(harness);
    return actual === wanted ? null : `node ${harness.id} has ${label} ${actual}`;
  }

  expectKnowsLeader(args: Arguments): string | null {
    const harness = this.liveNode(args.positionalNode(1));
    const wanted = nodeId(args.positionalInteger(2, "leader id"));
    const actual = harness.node.status().leader;
    return actual === wanted ? null : `node ${harness.id} believes the leader is ${actual}`;
  }

  expectLogEqual(args: Arguments): string | null {
    const ids = args.positionals().slice(1).map((_, position) => args.positionalNode(position + 1));
    if (ids.length < 2) throw args.error("log-equal needs at least two nodes");
    const [first, ...rest] = ids.map((id) => this.node(id));
    for (const other of rest) {
      const difference = compareLogs(first.storage, other.storage);
      if (difference !== null) return `logs of ${first.id} and ${other.id} differ: ${difference}`;
    }
    return null;
  }

  expectConfig(args: Arguments): string | null {
    const harness = this.liveNode(args.positionalNode(1));
    const config = harness.node.status().config;
    const problems: string[] = [];
    for (const [key, actual] of [["voters", config.voters], ["outgoing", config.votersOutgoing], ["learners", config.learners]] as const) {
      const wanted = args.nodeList(key);
      if (formatIds(actual) !== formatIds(wanted)) problems.push(`${key}=(${formatIds(actual)})`);
    }
    return problems.length === 0 ? null : `node ${harness.id} has ${problems.join(" ")}`;
  }

  expectStateMachine(args: Arguments): string | null {
    const harness = this.node(args.positionalNode(1));
    const wanted = args.positionals().slice(2);
    const actual = harness.stateMachine.map((command) => command.data);
    return actual.join(" ") === wanted.join(" ") ? null : `node ${harness.id} applied [${actual.join(" ")}]`;
  }

  expectReadState(args: Arguments): string | null {
    const harness = this.node(args.positionalNode(1));
    const context = args.positional(2, "context");
    const index = args.integer("index", -1);
    const found = harness.readStates.filter((readState) => readState.context === context);
    if (found.length === 0) return `node ${harness.id} has no read state for ${context}`;
    if (index >= 0 && !found.some((readState) => readState.index === index)) {
      return `node ${harness.id} read ${context} at index ${found.map((readState) => readState.index).join(",")}`;
    }
    return null;
  }

  expectNoReadState(args: Arguments): string | null {
    const harness = this.node(args.positionalNode(1));
    const context = args.positional(2, "context");
    const found = harness.readStates.filter((readState) => readState.context === context);
    return found.length === 0 ? null : `node ${harness.id} served ${context} at index ${found[0].index}`;
  }

  expectAppendRejects(args: Arguments): string | null {
    const harness = this.node(args.positionalNode(1));
    if (args.positional(2, "at-most") !== "at-most") throw args.error("write: expect append-rejects <node> at-most <count>");
    const most = args.positionalInteger(3, "count");
    return harness.appendRejectsSent <= most ? null : `node ${harness.id} rejected ${harness.appendRejectsSent} appends`;
  }

  expectRefused(args: Arguments): string | null {
    const harness = this.liveNode(args.positionalNode(1));
    const reason = args.positional(2, "reason") as RejectReason;
    const result = harness.node.propose(encoder.encode(`probe@${args.command.lineNumber}`));
    if (result.ok) return `node ${harness.id} accepted the proposal at ${result.term}:${result.index}`;
    const problems: string[] = [];
    if (result.reason !== reason) problems.push(`reason ${result.reason}`);
    const leader = args.optionalNode("leader");
    if (leader !== undefined && result.leader !== leader) problems.push(`leader hint ${result.leader}`);
    return problems.length === 0 ? null : `refused with ${problems.join(" and ")}`;
  }

  // ---- helpers -------------------------------------------------------------

  private node(id: NodeId): NodeHarness {
    const harness = this.nodes.get(id);
    if (harness === undefined) throw new Error(`no node ${id}`);
    return harness;
  }

  private liveNode(id: NodeId): NodeHarness {
    const harness = this.node(id);
    if (harness.down) throw new Error(`node ${id} is down`);
    return harness;
  }

  private liveNodes(): NodeHarness[] {
    return [...this.nodes.values()].filter((harness) => !harness.down);
  }

  private print(line: string): void {
    this.output.push(line);
  }

  private observeAll(): Map<NodeId, Observed | null> {
    const observed = new Map<NodeId, Observed | null>();
    for (const harness of this.nodes.values()) {
      if (harness.down) {
        observed.set(harness.id, null);
        continue;
      }
      const status = harness.node.status();
      observed.set(harness.id, { role: status.role, term: status.term, leader: status.leader });
    }
    return observed;
  }

  private printStateChanges(before: Map<NodeId, Observed | null>, prefix = ""): void {
    for (const [id, now] of this.observeAll()) {
      const then = before.get(id);
      if (now === null || then === undefined) continue;
      if (then !== null && then.role === now.role && then.term === now.term && then.leader === now.leader) continue;
      this.print(`${prefix}state ${id}: ${ROLE_NAMES[now.role]} term=${now.term} leader=${now.leader}`);
    }
  }
}

/** Commands whose output already shows every state change (in their Ready headers). */
const QUIET_ABOUT_STATE = new Set(["stabilize", "run", "expect", "status", "raft-log", "add-nodes", "log"]);

type Handler = (this: ScenarioHarness, args: Arguments) => void;
const COMMANDS: Record<string, Handler | undefined> = {
  "add-nodes": ScenarioHarness.prototype.addNodes,
  log: ScenarioHarness.prototype.log,
  tick: ScenarioHarness.prototype.tick,
  "tick-all": ScenarioHarness.prototype.tickAll,
  run: ScenarioHarness.prototype.run,
  stabilize: ScenarioHarness.prototype.stabilize,
  "process-ready": ScenarioHarness.prototype.processReady,
  "deliver-msgs": ScenarioHarness.prototype.deliverMessages,
  partition: ScenarioHarness.prototype.partition,
  cut: ScenarioHarness.prototype.cut,
  heal: ScenarioHarness.prototype.heal,
  crash: ScenarioHarness.prototype.crash,
  restart: ScenarioHarness.prototype.restart,
  propose: ScenarioHarness.prototype.propose,
  "propose-conf-change": ScenarioHarness.prototype.proposeConfChange,
  "transfer-leadership": ScenarioHarness.prototype.transferLeadership,
  "read-index": ScenarioHarness.prototype.readIndex,
  campaign: ScenarioHarness.prototype.campaign,
  compact: ScenarioHarness.prototype.compact,
  status: ScenarioHarness.prototype.status,
  "raft-log": ScenarioHarness.prototype.raftLog,
  expect: ScenarioHarness.prototype.expect,
};

type Expectation = (this: ScenarioHarness, args: Arguments) => string | null;
const EXPECTATIONS: Record<string, Expectation | undefined> = {
  leader: ScenarioHarness.prototype.expectLeader,
  "no-leader": ScenarioHarness.prototype.expectNoLeader,
  role: ScenarioHarness.prototype.expectRole,
  term(args) { return this.expectNumber(args, "term", (harness) => harness.node.status().term); },
  committed(args) { return this.expectNumber(args, "commit", (harness) => harness.node.status().commit); },
  applied(args) { return this.expectNumber(args, "applied index", (harness) => harness.applied); },
  "last-index"(args) { return this.expectNumber(args, "last index", (harness) => harness.storage.lastIndex()); },
  "first-index"(args) { return this.expectNumber(args, "first index", (harness) => harness.storage.firstIndex()); },
  "knows-leader": ScenarioHarness.prototype.expectKnowsLeader,
  "log-equal": ScenarioHarness.prototype.expectLogEqual,
  config: ScenarioHarness.prototype.expectConfig,
  "state-machine": ScenarioHarness.prototype.expectStateMachine,
  "read-state": ScenarioHarness.prototype.expectReadState,
  "no-read-state": ScenarioHarness.prototype.expectNoReadState,
  "append-rejects": ScenarioHarness.prototype.expectAppendRejects,
  refused: ScenarioHarness.prototype.expectRefused,
};

/** Typed access to a command's arguments, with errors that name the line. */
export class Arguments {
  constructor(readonly command: Command) {}

  error(message: string): ScenarioError {
    return new ScenarioError(`${this.command.name}: ${message}`, this.command.lineNumber);
  }

  all(): readonly Argument[] {
    return this.command.arguments;
  }

  positionals(): string[] {
    return this.command.arguments.filter((argument) => !argument.named).map((argument) => argument.key);
  }

  positionalCount(): number {
    return this.positionals().length;
  }

  positional(position: number, what: string): string {
    const value = this.positionals()[position];
    if (value === undefined) throw this.error(`missing ${what} (argument ${position + 1})`);
    return value;
  }

  positionalInteger(position: number, what: string): number {
    return parseInteger(this.positional(position, what), this);
  }

  positionalNode(position: number): NodeId {
    return nodeId(this.positionalInteger(position, "node id"));
  }

  hasWord(word: string): boolean {
    return this.positionals().includes(word);
  }

  has(key: string): boolean {
    return this.command.arguments.some((argument) => argument.named && argument.key === key);
  }

  named(key: string): readonly string[] {
    const found = this.command.arguments.filter((argument) => argument.named && argument.key === key);
    if (found.length !== 1) throw this.error(found.length === 0 ? `missing ${key}=` : `${key}= given twice`);
    return found[0].values;
  }

  single(key: string): string {
    const values = this.named(key);
    if (values.length !== 1) throw this.error(`${key}= takes one value`);
    return values[0];
  }

  integer(key: string, fallback: number): number {
    return this.has(key) ? parseInteger(this.single(key), this) : fallback;
  }

  optionalInteger(key: string): number | undefined {
    return this.has(key) ? parseInteger(this.single(key), this) : undefined;
  }

  optionalNode(key: string): NodeId | undefined {
    return this.has(key) ? nodeId(parseInteger(this.single(key), this)) : undefined;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.single(key);
    if (value !== "true" && value !== "false") throw this.error(`${key}= must be true or false`);
    return value === "true";
  }

  choice<const T extends string>(key: string, choices: readonly T[], fallback: T): T {
    if (!this.has(key)) return fallback;
    const value = this.single(key);
    if (!(choices as readonly string[]).includes(value)) throw this.error(`${key}= must be one of ${choices.join(", ")}`);
    return value as T;
  }

  nodeList(key: string): NodeId[] {
    return this.has(key) ? this.named(key).map((value) => nodeId(parseInteger(value, this))) : [];
  }
}

function parseInteger(text: string, args: Arguments): number {
  if (!/^\d+$/.test(text)) throw args.error(`"${text}" is not a non-negative integer`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw args.error(`"${text}" is too large`);
  return value;
}

// ---- formatting ---------------------------------------------------------------

function emptyConf(): ConfState {
  return { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
}

function linkName(from: NodeId, to: NodeId): string {
  return `${from}->${to}`;
}

function formatIds(ids: readonly NodeId[]): string {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(",");
}

export function formatConf(conf: ConfState): string {
  let text = `voters=(${formatIds(conf.voters)})`;
  if (conf.votersOutgoing.length > 0) text += `&&(${formatIds(conf.votersOutgoing)})`;
  if (conf.learners.length > 0) text += ` learners=(${formatIds(conf.learners)})`;
  if (conf.learnersNext.length > 0) text += ` learners-next=(${formatIds(conf.learnersNext)})`;
  if (conf.autoLeave) text += " auto-leave";
  return text;
}

function formatReadyHeader(ready: Ready): string {
  let text = "";
  if (ready.softState !== null) text += ` ${ROLE_NAMES[ready.softState.role]} leader=${ready.softState.leader}`;
  if (ready.hardState !== null) {
    const hard = ready.hardState;
    text += `${text.length > 0 ? ";" : ""} term=${hard.term} vote=${hard.vote} commit=${hard.commit}`;
  }
  if (ready.mustSync) text += " (sync)";
  return text;
}

export function formatEntry(entry: Entry, implementation: RaftImplementation): string {
  const position = `${entry.term}:${entry.index}`;
  if (entry.type === EntryType.ConfChange) return `${position}=conf(${formatConfChange(implementation.decodeConfChange(entry.data))})`;
  if (entry.data.length === 0) return position;
  const data = decoder.decode(entry.data);
  // Entries of a log written by the `log` command carry their own position as data; don't print it twice.
  return data === position ? position : `${position}=${data}`;
}

export function formatEntries(entries: readonly Entry[], implementation: RaftImplementation): string {
  return entries.map((entry) => formatEntry(entry, implementation)).join(" ");
}

function formatConfChange(change: ConfChange): string {
  if (change.changes.length === 0) return "leave-joint";
  const names: Record<ConfChangeType, string> = {
    [ConfChangeType.AddNode]: "add", [ConfChangeType.RemoveNode]: "remove", [ConfChangeType.AddLearner]: "add-learner",
  };
  const transitions: Record<ConfChangeTransition, string> = {
    [ConfChangeTransition.Auto]: "", [ConfChangeTransition.JointImplicit]: " joint-implicit",
    [ConfChangeTransition.JointExplicit]: " joint-explicit",
  };
  return change.changes.map((single) => `${names[single.type]}=${single.nodeId}`).join(" ") + transitions[change.transition];
}

function formatSnapshot(snapshot: Snapshot): string {
  return `${snapshot.metadata.term}:${snapshot.metadata.index} ${formatConf(snapshot.metadata.confState)}`;
}

export function formatMessage(message: Message, implementation: RaftImplementation): string {
  const name = MESSAGE_TYPE_NAMES[message.type];
  let text = `${message.from}->${message.to} ${name} term=${message.term}`;
  switch (message.type) {
    case MessageType.App:
      text += ` prev=${message.logTerm}:${message.index} commit=${message.commit}`;
      if (message.entries.length > 0) text += ` [${formatEntries(message.entries, implementation)}]`;
      break;
    case MessageType.AppResp:
      text += message.reject ? ` reject index=${message.index} hint=${message.logTerm}:${message.rejectHint}` : ` index=${message.index}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      text += ` last=${message.logTerm}:${message.index}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      text += message.reject ? " rejected" : " granted";
      break;
    case MessageType.Heartbeat:
      text += ` commit=${message.commit}`;
      break;
    case MessageType.Snap:
      if (message.snapshot !== null) text += ` snapshot=${formatSnapshot(message.snapshot)}`;
      break;
    case MessageType.Prop:
      text += ` [${formatEntries(message.entries, implementation)}]`;
      break;
    case MessageType.ReadIndexResp:
      text += ` index=${message.index}`;
      break;
    default:
      if (message.reject) text += " reject";
  }
  if (message.context.length > 0) text += ` context=${decoder.decode(message.context)}`;
  return text;
}

function formatProposeResult(result: ReturnType<RaftNode["propose"]>): string {
  return result.ok ? `accepted at ${result.term}:${result.index}` : `refused: ${result.reason} (leader ${result.leader})`;
}

function formatStorage(storage: LogStorage, implementation: RaftImplementation): string {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const snapshot = storage.snapshot();
  const hard = storage.initialState().hardState;
  const entries = last >= first ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  return `term=${hard.term} vote=${hard.vote} commit=${hard.commit} snapshot=${snapshot.metadata.term}:${snapshot.metadata.index} ` +
    `log=${entries.length > 0 ? formatEntries(entries, implementation) : "(empty)"}`;
}

/** Null when two persisted logs hold the same terms at the same indexes (over the range both still have). */
function compareLogs(a: LogStorage, b: LogStorage): string | null {
  if (a.lastIndex() !== b.lastIndex()) return `last index ${a.lastIndex()} vs ${b.lastIndex()}`;
  const low = Math.max(a.firstIndex(), b.firstIndex()) - 1;
  for (let index = a.lastIndex(); index >= low && index >= 1; index--) {
    if (a.term(index) !== b.term(index)) return `term at index ${index}: ${a.term(index)} vs ${b.term(index)}`;
  }
  return null;
}

function encodeImage(commands: readonly AppliedCommand[]): Uint8Array {
  return encoder.encode(JSON.stringify(commands));
}

function decodeImage(data: Uint8Array): AppliedCommand[] {
  if (data.length === 0) return [];
  const parsed: unknown = JSON.parse(decoder.decode(data));
  assert(Array.isArray(parsed), "snapshot image is a JSON array");
  return parsed.map((item: unknown) => {
    assert(typeof item === "object" && item !== null, "snapshot image item is an object");
    const { index, data: text } = item as { index: unknown; data: unknown };
    assert(typeof index === "number" && typeof text === "string", "snapshot image item has index and data");
    return { index, data: text };
  });
}
