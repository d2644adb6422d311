/**
 * In-process fake clusters for the client's and the CLI's tests: each member
 * is the real gRPC server with etcd's real KV, Cluster and Maintenance
 * services, on backends whose propose() applies the command straight to one
 * real Mvcc on the in-memory store shared by all members (as if Raft had
 * replicated it). Members differ in id, in the leader they report, and in
 * what a test tells them to do: count every request they receive, hang,
 * fail, or cut the client's connection while a request is in progress.
 *
 * Every member listens on 127.0.0.1 port 0 behind a small TCP relay, so a
 * test can drop a client's connection at an exact moment.
 */
import net from "node:net";
import { createGrpcServer, registerEtcdServices, type CallContext, type GrpcServer, type KvHandler } from "../../api/mod.js";
import type { ClusterBackend, KvBackend, MaintenanceBackend, MemberInfo, SnapshotStream, StatusInfo } from "../../api/backend.js";
import {
  BadLeaderTransfereeError, LearnerNotReadyError, MemberNotFoundError, MemberNotLearnerError, PeerUrlExistsError,
} from "../../api/backend.js";
import { ClusterService, KvService, MaintenanceService } from "../../api/services/mod.js";
import { encodeCommand, Mvcc, type AppliedEntry, type KvCommand } from "../../kv/mod.js";
import { EntryType } from "../../raft/types.js";
import { MemoryKvStore } from "../../storage/memory-kv/mod.js";

export const FAKE_CLUSTER_ID = 0xc0ff_ee00_1234_5678n;
/** Compaction work per batch, and a bound on batches, when a physical compaction is awaited. */
const COMPACT_BATCH_ENTRIES = 256;
const COMPACT_BATCHES_MAX = 10_000;

export type KvMethodName = "range" | "put" | "deleteRange" | "txn" | "compact";

/**
 * Runs before a member's KV handler sees a request (after it was counted):
 * throw to fail the call, return a promise to hold it.
 */
export type KvInterceptor = (method: KvMethodName, context: CallContext, member: FakeMember) => void | Promise<void>;

/** The state every member shares: one MVCC and one member list. */
class SharedState {
  readonly mvcc = new Mvcc(new MemoryKvStore());
  readonly members: MemberInfo[] = [];
  private lastIndex = 0;
  private nextMemberId = 0x5000n;

  apply(command: KvCommand, term: number): AppliedEntry {
    const entry = { term, index: ++this.lastIndex, type: EntryType.Normal, data: encodeCommand(command) };
    const [applied] = this.mvcc.applyEntries([entry]);
    return applied;
  }

  newMemberId(): bigint {
    return this.nextMemberId++;
  }
}

export interface FakeMemberOptions {
  readonly id: bigint;
  readonly name: string;
  /** Serve TLS with this certificate and key (PEM). */
  readonly secure?: { readonly cert: Buffer; readonly key: Buffer };
}

export class FakeMember {
  readonly id: bigint;
  readonly name: string;
  term = 3;
  learner = false;
  /** The leader this member reports in Status (0n: none). */
  leader = 0n;
  /** Requests received per KV method (counted when the request arrives, before anything else). */
  readonly received: Record<KvMethodName, number> = { range: 0, put: 0, deleteRange: 0, txn: 0, compact: 0 };
  statusCalls = 0;
  /** Membership and MoveLeader calls received. */
  readonly clusterCalls: string[] = [];
  interceptor: KvInterceptor | undefined;
  /** Thrown by the next Cluster or Maintenance backend call (once). */
  failNext: Error | undefined;
  snapshotPieces: Uint8Array[] = [Buffer.from("cairn-snapshot-bytes")];
  server!: GrpcServer;
  relay!: TcpRelay;

  constructor(private readonly shared: SharedState, private readonly options: FakeMemberOptions) {
    this.id = options.id;
    this.name = options.name;
  }

  /** "127.0.0.1:port" of the member's relay: what clients connect to. */
  get endpoint(): string {
    return this.relay.address;
  }

  async start(): Promise<void> {
    this.server = createGrpcServer({ closeGraceMs: 200, secure: this.options.secure });
    registerEtcdServices(this.server, {
      kv: this.countingKv(new KvService(this.kvBackend())),
      cluster: new ClusterService(this.clusterBackend()),
      maintenance: new MaintenanceService(this.maintenanceBackend()),
    });
    const bound = await this.server.listen(0, "127.0.0.1");
    this.relay = await TcpRelay.start(bound.port);
  }

  async stop(): Promise<void> {
    this.relay.close();
    await this.server.close(200);
  }

  private takeFailure(): void {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }

  private identity() {
    return {
      clusterId: FAKE_CLUSTER_ID,
      memberId: this.id,
      raftTerm: () => this.term,
      isLearner: () => this.learner,
    };
  }

  private countingKv(inner: KvHandler): KvHandler {
    const wrap = <Request, Response>(method: KvMethodName, call: (request: Request, context: CallContext) => Promise<Response>) =>
      async (request: Request, context: CallContext): Promise<Response> => {
        this.received[method]++;
        await this.interceptor?.(method, context, this);
        return call(request, context);
      };
    return {
      range: wrap("range", inner.range.bind(inner)),
      put: wrap("put", inner.put.bind(inner)),
      deleteRange: wrap("deleteRange", inner.deleteRange.bind(inner)),
      txn: wrap("txn", inner.txn.bind(inner)),
      compact: wrap("compact", inner.compact.bind(inner)),
    };
  }

  private kvBackend(): KvBackend {
    const shared = this.shared;
    return {
      ...this.identity(),
      mvcc: shared.mvcc,
      readBarrier: async () => undefined,
      propose: async (command) => shared.apply(command, this.term),
      physicallyCompacted: async () => {
        for (let batch = 0; batch < COMPACT_BATCHES_MAX && !shared.mvcc.compactBatch(COMPACT_BATCH_ENTRIES); batch++);
      },
    };
  }

  private clusterBackend(): ClusterBackend {
    const members = this.shared.members;
    const indexOf = (id: bigint): number => {
      const index = members.findIndex((member) => member.id === id);
      if (index < 0) throw new MemberNotFoundError(id);
      return index;
    };
    return {
      ...this.identity(),
      members: () => members,
      readBarrier: async () => this.takeFailure(),
      addMember: async (peerUrls, isLearner) => {
        this.clusterCalls.push("add");
        this.takeFailure();
        for (const url of peerUrls) {
          if (members.some((member) => member.peerUrls.includes(url))) throw new PeerUrlExistsError(url);
        }
        const member: MemberInfo = { id: this.shared.newMemberId(), name: "", peerUrls, clientUrls: [], isLearner };
        members.push(member);
        return member;
      },
      removeMember: async (id) => {
        this.clusterCalls.push("remove");
        this.takeFailure();
        members.splice(indexOf(id), 1);
      },
      updateMember: async (id, peerUrls) => {
        this.clusterCalls.push("update");
        this.takeFailure();
        const index = indexOf(id);
        members[index] = { ...members[index], peerUrls };
      },
      promoteMember: async (id) => {
        this.clusterCalls.push("promote");
        this.takeFailure();
        const index = indexOf(id);
        if (!members[index].isLearner) throw new MemberNotLearnerError(id);
        if (members[index].name === "lagging") throw new LearnerNotReadyError(id);
        members[index] = { ...members[index], isLearner: false };
      },
    };
  }

  private maintenanceBackend(): MaintenanceBackend {
    const mvcc = this.shared.mvcc;
    return {
      ...this.identity(),
      currentRevision: () => mvcc.currentRevision(),
      status: (): StatusInfo => {
        this.statusCalls++;
        return {
          version: "3.5.0", dbSizeBytes: 24_576, dbSizeInUseBytes: 16_384, leader: this.leader, raftIndex: 40 + mvcc.currentRevision(),
          raftAppliedIndex: 39 + mvcc.currentRevision(), raftTerm: this.term, errors: [], isLearner: this.learner,
        };
      },
      hashKv: (revision) => mvcc.hashKv(revision),
      snapshot: async (): Promise<SnapshotStream> => {
        const pieces = this.snapshotPieces;
        async function* chunks(): AsyncIterable<Uint8Array> {
          for (const piece of pieces) yield piece;
        }
        return { revision: mvcc.currentRevision(), sizeBytesEstimate: pieces.reduce((sum, piece) => sum + piece.length, 0), chunks: chunks() };
      },
      moveLeader: async (target) => {
        this.clusterCalls.push("moveLeader");
        this.takeFailure();
        if (!this.shared.members.some((member) => member.id === target && !member.isLearner)) throw new BadLeaderTransfereeError(target);
      },
      alarms: () => [],
      activateAlarm: async () => null,
      deactivateAlarm: async () => null,
      defragment: async () => undefined,
    };
  }
}

/**
 * A cluster of fake members sharing one store. Member i has id 0x1000 + i
 * (name "m" + i); `setLeader(i)` makes every member report member i as the
 * leader in Status.
 */
export class FakeCluster {
  readonly shared = new SharedState();
  readonly members: FakeMember[] = [];

  static async start(size: number, options: { secure?: FakeMemberOptions["secure"] } = {}): Promise<FakeCluster> {
    const cluster = new FakeCluster();
    for (let index = 0; index < size; index++) {
      const member = new FakeMember(cluster.shared, { id: 0x1000n + BigInt(index), name: `m${index}`, secure: options.secure });
      await member.start();
      cluster.members.push(member);
      cluster.shared.members.push({
        id: member.id, name: member.name, peerUrls: [`http://127.0.0.1:${23_800 + index}`], clientUrls: [`http://${member.endpoint}`], isLearner: false,
      });
    }
    cluster.setLeader(0);
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((member) => member.endpoint);
  }

  /** Every member reports member `index` as leader (undefined: no leader). */
  setLeader(index: number | undefined): void {
    for (const member of this.members) member.leader = index === undefined ? 0n : this.members[index].id;
  }

  /** Requests received by all members for one KV method. */
  received(method: KvMethodName): number {
    return this.members.reduce((sum, member) => sum + member.received[method], 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
  }
}

/** A TCP relay in front of a server, so tests can cut every client connection at once. */
export class TcpRelay {
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted so far. */
  connections = 0;

  private readonly server: net.Server;
  address = "";

  private constructor(targetPort: number) {
    this.server = net.createServer((client) => this.accept(client, targetPort));
  }

  static async start(targetPort: number): Promise<TcpRelay> {
    const relay = new TcpRelay(targetPort);
    await new Promise<void>((resolve) => relay.server.listen(0, "127.0.0.1", resolve));
    relay.address = `127.0.0.1:${(relay.server.address() as net.AddressInfo).port}`;
    return relay;
  }

  private accept(client: net.Socket, targetPort: number): void {
    this.connections++;
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every open connection abruptly (both directions). */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  close(): void {
    this.cutAll();
    this.server.close();
  }
}

/** A loopback port nothing listens on (bound once, then released): connecting to it is refused. */
export async function refusedEndpoint(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** A loopback endpoint that accepts connections and never answers (a stopped or partitioned member). */
export async function silentEndpoint(): Promise<{ endpoint: string; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
