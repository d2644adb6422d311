/**
 * The state machine of group 0: the etcd key space (kv/'s MVCC) plus the
 * cluster's membership, both in one store so one snapshot carries both.
 * Members and the Raft membership live in the store's meta table; the MVCC
 * records the applied index. A conf change writes its membership first and
 * then advances the applied index: both writes are idempotent, so a crash
 * between them is repaired by re-applying the entry.
 */
import { assert } from "../lib/assert.js";
import { nodeId, type LogIndex, type NodeId } from "../lib/ids.js";
import {
  KvTable, Mvcc, SnapshotDecoder, SnapshotSource, type AppliedEntry as KvAppliedEntry, type KvStore, type MvccOptions,
} from "../kv/mod.js";
import { ConfChangeType, EntryType, emptyConfState, type ConfState, type Entry } from "../raft/mod.js";
import { streamSnapshotSource } from "../storage/lmdb/mod.js";
import { decodeMemberContext, type Member } from "./membership.js";
import type { AppliedEntry, AppliedPosition, GroupStateMachine } from "./state-machine.js";

const MEMBER_PREFIX = "cairn/member/";
const CONF_STATE_KEY = new TextEncoder().encode("cairn/conf-state");
const ALARMS_KEY = new TextEncoder().encode("cairn/alarms");
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A store that can also install a snapshot and report durability (LMDB, or the in-memory store). */
export interface InstallableStore extends KvStore {
  installSnapshot(stream: AsyncIterable<Uint8Array>): Promise<unknown>;
  flushed(): Promise<void>;
}

export class KvStateMachine implements GroupStateMachine {
  readonly mvcc: Mvcc;
  private confState: ConfState;
  private membersById = new Map<NodeId, Member>();
  /** Observers of applied KV entries (the watch hub). */
  private readonly listeners: Array<(entries: readonly KvAppliedEntry[]) => void> = [];
  /** Observers of a snapshot install, after which the store is ahead of anything listeners were told. */
  private readonly restoredListeners: Array<() => void> = [];
  private readonly memberListeners: Array<() => void> = [];
  private alarmList: Alarm[] = [];
  private durable = 0;

  constructor(readonly store: InstallableStore, options: MvccOptions = {}) {
    this.mvcc = new Mvcc(store, options);
    this.confState = emptyConfState;
    this.loadMembership();
  }

  private loadMembership(): void {
    const { confState, members } = this.store.read((reader) => {
      const stored = reader.get(KvTable.Meta, CONF_STATE_KEY);
      const list: Member[] = [];
      const prefix = encoder.encode(MEMBER_PREFIX);
      const end = encoder.encode(MEMBER_PREFIX.slice(0, -1) + "0");
      for (const entry of reader.range(KvTable.Meta, { start: prefix, end })) list.push(decodeMemberContext(entry.value));
      return { confState: stored ? decodeConfState(stored) : emptyConfState, members: list };
    });
    this.confState = confState;
    this.membersById = new Map(members.map((member) => [member.id, member]));
    const alarms = this.store.read((reader) => reader.get(KvTable.Meta, ALARMS_KEY));
    this.alarmList = alarms ? decodeAlarms(alarms) : [];
  }

  onApplied(listener: (entries: readonly KvAppliedEntry[]) => void): void {
    this.listeners.push(listener);
  }

  onRestored(listener: () => void): void {
    this.restoredListeners.push(listener);
  }

  members(): Member[] {
    return [...this.membersById.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  member(id: NodeId): Member | undefined {
    return this.membersById.get(id);
  }

  applied(): AppliedPosition {
    return { index: this.mvcc.appliedIndex(), term: this.mvcc.appliedTerm(), confState: this.confState };
  }

  apply(entries: readonly AppliedEntry[]): unknown[] {
    const raftEntries: Entry[] = [];
    for (const entry of entries) {
      if (entry.kind === "conf-change") {
        if (entry.index > this.mvcc.appliedIndex()) this.applyMembership(entry);
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.ConfChange, data: EMPTY });
      } else if (entry.kind === "command" && entry.command[0] === CommandKind.Kv) {
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: entry.command.subarray(1) });
      } else if (entry.kind === "command" && entry.command[0] === CommandKind.MemberAttributes) {
        if (entry.index > this.mvcc.appliedIndex()) this.applyMemberAttributes(entry.command.subarray(1));
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: EMPTY });
      } else if (entry.kind === "command" && entry.command[0] === CommandKind.Alarm) {
        if (entry.index > this.mvcc.appliedIndex()) this.applyAlarm(entry.command.subarray(1));
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: EMPTY });
      } else if (entry.kind === "command" && entry.command[0] === CommandKind.MemberPeerUrls) {
        if (entry.index > this.mvcc.appliedIndex()) this.applyMemberPeerUrls(entry.command.subarray(1));
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: EMPTY });
      } else if (entry.kind === "command") {
        // Unknown kind: every replica ignores it the same way (the proposer gets no result).
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: EMPTY });
      } else {
        raftEntries.push({ index: entry.index, term: entry.term, type: EntryType.Normal, data: EMPTY });
      }
    }
    const applied = this.mvcc.applyEntries(raftEntries);
    if (applied.length > 0) {
      for (const listener of this.listeners) listener(applied);
      void this.store.flushed().then(() => {
        const index = applied[applied.length - 1].index;
        if (index > this.durable) this.durable = index;
      });
    }
    const byIndex = new Map(applied.map((entry) => [entry.index, entry]));
    return entries.map((entry) => byIndex.get(entry.index));
  }

  private applyMembership(entry: AppliedEntry & { kind: "conf-change" }): void {
    const writes: Array<{ key: Uint8Array; value: Uint8Array | null }> = [];
    for (const single of entry.change.changes) {
      const key = memberKey(single.nodeId);
      const existing = this.membersById.get(single.nodeId);
      if (single.type === ConfChangeType.RemoveNode) {
        writes.push({ key, value: null });
        this.membersById.delete(single.nodeId);
        continue;
      }
      let member: Member | undefined = existing;
      if (entry.change.context.length > 0) {
        try {
          const described = decodeMemberContext(entry.change.context);
          if (described.id === single.nodeId) member = described;
        } catch {
          // A context that is not a member description (e.g. from a tool) leaves the attributes as they were.
        }
      }
      member ??= { id: single.nodeId, name: "", peerUrls: [], clientUrls: existing?.clientUrls ?? [], isLearner: false };
      member = { ...member, isLearner: single.type === ConfChangeType.AddLearner };
      this.membersById.set(single.nodeId, member);
      writes.push({ key, value: encodeMember(member) });
    }
    this.confState = entry.confState;
    const confStateBytes = encodeConfState(entry.confState);
    this.store.write((writer) => {
      for (const { key, value } of writes) {
        if (value === null) writer.delete(KvTable.Meta, key);
        else writer.put(KvTable.Meta, key, value);
      }
      writer.put(KvTable.Meta, CONF_STATE_KEY, confStateBytes);
    });
  }

  private applyMemberPeerUrls(json: Uint8Array): void {
    let update: { id: string; peerUrls: string[] };
    try {
      update = JSON.parse(decoder.decode(json)) as typeof update;
    } catch {
      return;
    }
    if (typeof update.id !== "string" || !/^\d+$/.test(update.id) || !Array.isArray(update.peerUrls)) return;
    const id = nodeId(BigInt(update.id));
    const member = this.membersById.get(id);
    if (!member) return;
    const updated: Member = { ...member, peerUrls: update.peerUrls.map(String) };
    this.membersById.set(id, updated);
    this.store.write((writer) => writer.put(KvTable.Meta, memberKey(id), encodeMember(updated)));
    this.membersChanged();
  }

  alarms(): Alarm[] {
    return [...this.alarmList];
  }

  hasAlarm(alarm: number): boolean {
    return this.alarmList.some((entry) => entry.alarm === alarm);
  }

  private applyAlarm(json: Uint8Array): void {
    let request: { activate: boolean; memberId: string; alarm: number };
    try {
      request = JSON.parse(decoder.decode(json)) as typeof request;
    } catch {
      return;
    }
    if (typeof request.memberId !== "string" || !/^\d+$/.test(request.memberId) || !Number.isInteger(request.alarm)) return;
    const memberId = nodeId(BigInt(request.memberId));
    const others = this.alarmList.filter((entry) => !(entry.memberId === memberId && entry.alarm === request.alarm));
    this.alarmList = request.activate ? [...others, { memberId, alarm: request.alarm }] : others;
    this.store.write((writer) => writer.put(KvTable.Meta, ALARMS_KEY, encodeAlarms(this.alarmList)));
  }

  onMembersChanged(listener: () => void): void {
    this.memberListeners.push(listener);
  }

  private membersChanged(): void {
    for (const listener of this.memberListeners) listener();
  }

  /** A member published its name and client URLs (through Raft, as etcd's members publish theirs). */
  private applyMemberAttributes(json: Uint8Array): void {
    let attributes: { id: string; name: string; clientUrls: string[] };
    try {
      attributes = JSON.parse(decoder.decode(json)) as typeof attributes;
    } catch {
      return; // deterministic on every replica: a malformed record changes nothing
    }
    if (typeof attributes.id !== "string" || !/^\d+$/.test(attributes.id) || !Array.isArray(attributes.clientUrls)) return;
    const id = nodeId(BigInt(attributes.id));
    const member = this.membersById.get(id);
    if (!member) return;
    const updated: Member = { ...member, name: String(attributes.name ?? member.name), clientUrls: attributes.clientUrls.map(String) };
    this.membersById.set(id, updated);
    this.store.write((writer) => writer.put(KvTable.Meta, memberKey(id), encodeMember(updated)));
    this.membersChanged();
  }

  /**
   * Replaces the membership outright, outside Raft, and clears the alarms:
   * only for a member that is not running (`cairn snapshot restore` builds a
   * new cluster's first state with it).
   */
  replaceMembership(members: readonly Member[], confState: ConfState): void {
    const stale = [...this.membersById.keys()];
    this.store.write((writer) => {
      for (const id of stale) writer.delete(KvTable.Meta, memberKey(id));
      for (const member of members) writer.put(KvTable.Meta, memberKey(member.id), encodeMember(member));
      writer.put(KvTable.Meta, CONF_STATE_KEY, encodeConfState(confState));
      writer.delete(KvTable.Meta, ALARMS_KEY);
    });
    this.loadMembership();
  }

  async durableIndex(): Promise<LogIndex> {
    await this.store.flushed();
    return Math.max(this.durable, 0);
  }

  snapshot(): { position: AppliedPosition; chunks: AsyncIterable<Uint8Array> } {
    // The source captures its header and the meta table now, so the position matches the image.
    const source = new SnapshotSource(this.mvcc);
    assert(source.header.appliedIndex === this.mvcc.appliedIndex(), "snapshot header and applied index disagree");
    const position = this.applied();
    return { position, chunks: streamSnapshotSource(source) };
  }

  async installSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
    const current = this.mvcc.appliedIndex();
    const iterator = chunks[Symbol.asyncIterator]();
    // Peek at the header: an image that is not newer than what we have must not replace it.
    const decoder = new SnapshotDecoder();
    const buffered: Uint8Array[] = [];
    let headerIndex: number | null = null;
    while (headerIndex === null) {
      const next = await iterator.next();
      if (next.done) throw new Error("snapshot stream ended before its header");
      buffered.push(next.value);
      for (const chunk of decoder.push(next.value)) if (chunk.kind === "header") headerIndex = chunk.header.appliedIndex;
    }
    if (headerIndex <= current) {
      await iterator.return?.();
      return false;
    }
    async function* replay(): AsyncIterable<Uint8Array> {
      yield* buffered;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    }
    await this.store.installSnapshot(replay());
    this.mvcc.reload();
    this.loadMembership();
    this.durable = this.mvcc.appliedIndex();
    for (const listener of this.restoredListeners) listener();
    return true;
  }
}

function encodeAlarms(alarms: readonly Alarm[]): Uint8Array {
  return encoder.encode(JSON.stringify(alarms.map((alarm) => ({ memberId: alarm.memberId.toString(), alarm: alarm.alarm }))));
}

function decodeAlarms(bytes: Uint8Array): Alarm[] {
  const list = JSON.parse(decoder.decode(bytes)) as { memberId: string; alarm: number }[];
  return list.map((entry) => ({ memberId: nodeId(BigInt(entry.memberId)), alarm: entry.alarm }));
}

function memberKey(id: NodeId): Uint8Array {
  return encoder.encode(MEMBER_PREFIX + id.toString(16).padStart(16, "0"));
}

function encodeMember(member: Member): Uint8Array {
  return encoder.encode(JSON.stringify({ ...member, id: member.id.toString() }));
}

function encodeConfState(confState: ConfState): Uint8Array {
  const ids = (list: readonly bigint[]) => list.map(String);
  return encoder.encode(JSON.stringify({
    voters: ids(confState.voters), votersOutgoing: ids(confState.votersOutgoing), learners: ids(confState.learners),
    learnersNext: ids(confState.learnersNext), autoLeave: confState.autoLeave,
  }));
}

function decodeConfState(bytes: Uint8Array): ConfState {
  const value = JSON.parse(decoder.decode(bytes)) as Record<string, string[] | boolean>;
  const ids = (list: unknown) => (list as string[]).map((id) => nodeId(BigInt(id)));
  return {
    voters: ids(value.voters), votersOutgoing: ids(value.votersOutgoing), learners: ids(value.learners),
    learnersNext: ids(value.learnersNext), autoLeave: value.autoLeave === true,
  };
}

/** etcd's MemberUpdate: new peer URLs for a member. */
export function memberPeerUrlsCommand(id: NodeId, peerUrls: readonly string[]): Uint8Array {
  return withKind(CommandKind.MemberPeerUrls, encoder.encode(JSON.stringify({ id: id.toString(), peerUrls })));
}

/** Group 0 commands start with a kind byte: the key space, or a member publishing its own attributes. */
export const CommandKind = { Kv: 0, MemberAttributes: 1, MemberPeerUrls: 2, Alarm: 3 } as const;

/** etcd's alarm types (AlarmType in rpc.proto). */
export const AlarmKind = { NoSpace: 1, Corrupt: 2 } as const;

export interface Alarm {
  readonly memberId: NodeId;
  readonly alarm: number;
}

/** Raise (activate) or clear an alarm for a member, replicated so every member refuses writes alike. */
export function alarmCommand(activate: boolean, memberId: NodeId, alarm: number): Uint8Array {
  return withKind(CommandKind.Alarm, encoder.encode(JSON.stringify({ activate, memberId: memberId.toString(), alarm })));
}

export function kvCommandBytes(encodedKvCommand: Uint8Array): Uint8Array {
  return withKind(CommandKind.Kv, encodedKvCommand);
}

function withKind(kind: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(payload.length + 1);
  bytes[0] = kind;
  bytes.set(payload, 1);
  return bytes;
}

export function memberAttributesCommand(id: NodeId, name: string, clientUrls: readonly string[]): Uint8Array {
  return withKind(CommandKind.MemberAttributes, encoder.encode(JSON.stringify({ id: id.toString(), name, clientUrls })));
}
