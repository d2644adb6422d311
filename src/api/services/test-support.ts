/**
 * Fake backends for the services' tests: a KvBackend whose propose() applies
 * the command straight to a real Mvcc on the in-memory store (encoded into a
 * Raft entry, as the runtime does), and Cluster and Maintenance backends
 * kept in memory. Each can be told to fail its next call with a given error.
 */
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { encodeCommand, Mvcc, type AppliedEntry, type KvCommand } from "../../kv/mod.js";
import { EntryType } from "../../raft/types.js";
import { MemoryKvStore } from "../../storage/memory-kv/mod.js";
import {
  BadLeaderTransfereeError, LearnerNotReadyError, MemberNotFoundError, MemberNotLearnerError, PeerUrlExistsError,
  type AlarmInfo, type ClusterBackend, type KvBackend, type MaintenanceBackend, type MemberInfo, type SnapshotStream, type StatusInfo,
} from "../backend.js";

export const FAKE_CLUSTER_ID = 0xfeed_face_dead_beefn;
export const FAKE_MEMBER_ID = 0xffff_ffff_0000_0001n;
export const FAKE_TERM = 5;
/** Compaction budget per batch when the fake waits for physical compaction. */
const COMPACT_BATCH_ENTRIES = 256;
/** Bound on the batches one physicallyCompacted() call runs. */
const COMPACT_BATCHES_MAX = 10_000;

class Identity {
  readonly clusterId = FAKE_CLUSTER_ID;
  readonly memberId = FAKE_MEMBER_ID;
  term = FAKE_TERM;
  learner = false;
  /** Thrown (once) by the next readBarrier or proposal-like call. */
  failNext: Error | undefined;

  raftTerm(): number {
    return this.term;
  }
  isLearner(): boolean {
    return this.learner;
  }
  protected takeFailure(): void {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }
}

export class FakeKvBackend extends Identity implements KvBackend {
  readonly mvcc = new Mvcc(new MemoryKvStore());
  readonly proposed: KvCommand[] = [];
  barriers = 0;
  physicalWaits: number[] = [];
  private lastIndex = 0;

  async readBarrier(): Promise<void> {
    this.barriers++;
    this.takeFailure();
  }

  /** When set, the next proposal waits until its signal aborts (a write stuck in Raft), then rejects as the runtime would. */
  hangNext = false;

  async propose(command: KvCommand, signal: AbortSignal = new AbortController().signal): Promise<AppliedEntry> {
    if (this.hangNext) {
      this.hangNext = false;
      await new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(new Error("proposal abandoned")), { once: true }));
    }
    this.takeFailure();
    this.proposed.push(command);
    const entry = { term: this.term, index: ++this.lastIndex, type: EntryType.Normal, data: encodeCommand(command) };
    const [applied] = this.mvcc.applyEntries([entry]);
    return applied;
  }

  async physicallyCompacted(revision: number): Promise<void> {
    this.takeFailure();
    for (let batch = 0; batch < COMPACT_BATCHES_MAX && !this.mvcc.compactBatch(COMPACT_BATCH_ENTRIES); batch++);
    this.physicalWaits.push(revision);
  }
}

export class FakeClusterBackend extends Identity implements ClusterBackend {
  barriers = 0;
  private nextId = 0x1000n;
  readonly list: MemberInfo[] = [];
  /** Ids of learners that have caught up with the leader. */
  readonly inSync = new Set<bigint>();

  constructor() {
    super();
    this.reset();
  }

  /** Back to two voters, no learners, no pending failure. */
  reset(): void {
    this.list.splice(0, this.list.length,
      { id: FAKE_MEMBER_ID, name: "one", peerUrls: ["http://127.0.0.1:2380"], clientUrls: ["http://127.0.0.1:2379"], isLearner: false },
      { id: 2n, name: "two", peerUrls: ["http://127.0.0.1:2381"], clientUrls: ["http://127.0.0.1:2378"], isLearner: false });
    this.inSync.clear();
    this.barriers = 0;
    this.learner = false;
    this.failNext = undefined;
  }

  members(): readonly MemberInfo[] {
    return this.list;
  }

  async readBarrier(): Promise<void> {
    this.barriers++;
    this.takeFailure();
  }

  async addMember(peerUrls: readonly string[], isLearner: boolean): Promise<MemberInfo> {
    this.takeFailure();
    for (const url of peerUrls) {
      if (this.list.some((member) => member.peerUrls.includes(url))) throw new PeerUrlExistsError(url);
    }
    const member: MemberInfo = { id: this.nextId++, name: "", peerUrls, clientUrls: [], isLearner };
    this.list.push(member);
    return member;
  }

  async removeMember(id: bigint): Promise<void> {
    this.takeFailure();
    this.list.splice(this.indexOf(id), 1);
  }

  async updateMember(id: bigint, peerUrls: readonly string[]): Promise<void> {
    this.takeFailure();
    const index = this.indexOf(id);
    this.list[index] = { ...this.list[index], peerUrls };
  }

  async promoteMember(id: bigint): Promise<void> {
    this.takeFailure();
    const index = this.indexOf(id);
    if (!this.list[index].isLearner) throw new MemberNotLearnerError(id);
    if (!this.inSync.has(id)) throw new LearnerNotReadyError(id);
    this.list[index] = { ...this.list[index], isLearner: false };
  }

  private indexOf(id: bigint): number {
    const index = this.list.findIndex((member) => member.id === id);
    if (index < 0) throw new MemberNotFoundError(id);
    return index;
  }
}

export class FakeMaintenanceBackend extends Identity implements MaintenanceBackend {
  readonly active: AlarmInfo[] = [];
  leader = FAKE_MEMBER_ID;
  defragmented = 0;
  movedTo: bigint[] = [];
  snapshotPieces: Uint8Array[] = [Buffer.from("cairn-snapshot")];

  constructor(private readonly kv: FakeKvBackend, private readonly voters: readonly bigint[] = [FAKE_MEMBER_ID, 2n]) {
    super();
  }

  currentRevision(): number {
    return this.kv.mvcc.currentRevision();
  }

  status(): StatusInfo {
    return {
      version: "3.5.0", dbSizeBytes: 8192, dbSizeInUseBytes: 4096, leader: this.leader, raftIndex: 12, raftAppliedIndex: 11,
      raftTerm: this.term, errors: [], isLearner: this.learner,
    };
  }

  hashKv(revision: number): { hash: number; compactRevision: number; hashRevision: number; revision: number } {
    return this.kv.mvcc.hashKv(revision);
  }

  async snapshot(): Promise<SnapshotStream> {
    const pieces = this.snapshotPieces;
    async function* chunks(): AsyncIterable<Uint8Array> {
      for (const piece of pieces) yield piece;
    }
    return { revision: this.currentRevision(), sizeBytesEstimate: pieces.reduce((sum, piece) => sum + piece.length, 0), chunks: chunks() };
  }

  async moveLeader(target: bigint): Promise<void> {
    this.takeFailure();
    if (!this.voters.includes(target) || target === this.memberId) throw new BadLeaderTransfereeError(target);
    this.movedTo.push(target);
  }

  alarms(): readonly AlarmInfo[] {
    return this.active;
  }

  async activateAlarm(memberId: bigint, alarm: number): Promise<AlarmInfo | null> {
    this.takeFailure();
    if (this.active.some((item) => item.memberId === memberId && item.alarm === alarm)) return null;
    const raised = { memberId, alarm };
    this.active.push(raised);
    return raised;
  }

  async deactivateAlarm(memberId: bigint, alarm: number): Promise<AlarmInfo | null> {
    this.takeFailure();
    const index = this.active.findIndex((item) => item.memberId === memberId && item.alarm === alarm);
    if (index < 0) return null;
    return this.active.splice(index, 1)[0];
  }

  async defragment(): Promise<void> {
    this.takeFailure();
    this.defragmented++;
  }
}

// ------------------------------------------------------------------ a reference client

/** grpc-js with the .proto files the etcd3 package ships: shows the exact status code and text a client receives. */
export function referenceClient(address: string, service: "KV" | "Cluster" | "Maintenance"): grpc.Client {
  const protoPath = createRequire(import.meta.url).resolve("etcd3/proto/rpc.proto");
  const definition = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
  const root = grpc.loadPackageDefinition(definition) as unknown as { etcdserverpb: Record<string, grpc.ServiceClientConstructor> };
  return new root.etcdserverpb[service](address, grpc.credentials.createInsecure());
}

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;

/** Calls a unary method; resolves with the response, or with the ServiceError (never rejects). */
export function callUnary(client: grpc.Client, method: string, request: object): Promise<Record<string, unknown> | grpc.ServiceError> {
  return new Promise((resolve) => {
    (client as unknown as Record<string, (request: object, callback: Callback) => void>)[method](request, (error, response) => resolve(error ?? response));
  });
}
