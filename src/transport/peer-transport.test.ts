import { connect, createServer, type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { crc32c } from "../lib/crc32c.js";
import { clusterId, nodeId, type ClusterId, type NodeId } from "../lib/ids.js";
import { createPrng } from "../lib/prng.js";
import { MessageType, type Message } from "../raft/types.js";
import { encodeMessage } from "./codec.js";
import { HandshakeRefusedError, HandshakeRejectedError, SnapshotBusyError, SnapshotSendError, TransportClosedError, UnknownPeerError } from "./errors.js";
import { encodeFrame, FrameType } from "./frame.js";
import { ConnectionKind, encodeAccept, encodeHello, PROTOCOL_VERSION, RefuseCode } from "./handshake.js";
import { PeerTransport, type PeerTransportOptions } from "./peer-transport.js";
import { makeEntries, makeMessage, NODE_1, NODE_2, NODE_3, RecordingLogger, waitFor } from "./test-helpers.js";

const CLUSTER = clusterId(0x1c2b3a4f5e6d7c8bn);

interface TestNode {
  readonly transport: PeerTransport;
  readonly id: NodeId;
  readonly logger: RecordingLogger;
  readonly inbox: Message[];
  readonly unreachable: NodeId[];
  readonly refusals: { peer: NodeId; error: Error }[];
}

const open: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

async function startNode(id: NodeId, overrides: Partial<PeerTransportOptions> & { cluster?: ClusterId; port?: number } = {}): Promise<TestNode> {
  const logger = new RecordingLogger();
  const inbox: Message[] = [];
  const unreachable: NodeId[] = [];
  const refusals: { peer: NodeId; error: Error }[] = [];
  const transport = await PeerTransport.listen({
    nodeId: id,
    clusterId: overrides.cluster ?? CLUSTER,
    listenUrl: `http://127.0.0.1:${overrides.port ?? 0}`,
    logger,
    onMessage: (message) => inbox.push(message),
    onSnapshot: async (_message, data) => {
      for await (const _chunk of data) { /* discard */ }
    },
    onUnreachable: (peer) => unreachable.push(peer),
    onPeerRefused: (peer, error) => refusals.push({ peer, error }),
    random: () => 0.5,
    ...overrides,
    tuning: { backoffMsMin: 20, backoffMsMax: 200, dialTimeoutMs: 2_000, handshakeTimeoutMs: 2_000, closeGraceMs: 200, ...overrides.tuning },
  });
  open.push(transport);
  return { transport, id, logger, inbox, unreachable, refusals };
}

function connectAll(nodes: TestNode[]): void {
  for (const node of nodes) {
    for (const other of nodes) if (other !== node) node.transport.addPeer(other.id, other.transport.url);
  }
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return makeMessage({ type: MessageType.Heartbeat, from, to, term: 2, commit });
}

async function untilConnected(node: TestNode, peer: NodeId): Promise<void> {
  await waitFor(() => node.transport.peerStats(peer)?.state === "connected", `node ${node.id} connected to ${peer}`);
}

describe("peer transport messaging", () => {
  it("delivers thousands of messages among three nodes in order, many per socket write", async () => {
    const nodes = await Promise.all([NODE_1, NODE_2, NODE_3].map((id) => startNode(id)));
    connectAll(nodes);
    const perPair = 2_000;
    for (const node of nodes) {
      for (const other of nodes) {
        if (other === node) continue;
        await untilConnected(node, other.id);
        for (let i = 0; i < perPair; i++) {
          const message = i % 10 === 0
            ? makeMessage({ type: MessageType.App, from: node.id, to: other.id, term: 3, logTerm: 3, index: i, commit: i, entries: makeEntries(i + 1, 3, 2, 100) })
            : heartbeat(node.id, other.id, i);
          expect(node.transport.send(message)).toBe(true);
        }
      }
    }
    await waitFor(() => nodes.every((node) => node.inbox.length === 2 * perPair), "all messages delivered");
    for (const node of nodes) {
      expect(node.inbox.every((message) => message.to === node.id)).toBe(true);
      for (const other of nodes) {
        if (other === node) continue;
        const fromOther = node.inbox.filter((message) => message.from === other.id);
        expect(fromOther.map((message) => message.commit)).toEqual(Array.from({ length: perPair }, (_, i) => i));
        expect(fromOther[10].entries.map((entry) => entry.index)).toEqual([11, 12]);
        const stats = other.transport.peerStats(node.id);
        expect(stats?.messagesSent).toBe(perPair);
        expect(stats?.messagesDropped).toBe(0);
        expect(stats?.writes).toBeLessThan(perPair / 10);
      }
      expect(node.transport.stats().messagesReceived).toBe(2 * perPair);
    }
  });

  it("keeps writing batches after each write completes when one batch cannot hold the queue", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { tuning: { batchBytesMax: 2_000 } }), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    await untilConnected(a, b.id);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100; i++) a.transport.send(heartbeat(a.id, b.id, round * 100 + i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => b.inbox.length === 2_000, "all messages delivered");
    expect(b.inbox.map((message) => message.commit)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
    const stats = a.transport.peerStats(b.id);
    // 75-byte frames, at most 2000 bytes per write: at least 26 messages per write, never more than the budget allows.
    expect(stats?.writes).toBeGreaterThanOrEqual(Math.ceil(stats!.bytesSent / 2_000));
    expect(stats?.writes).toBeLessThan(2_000 / 20);
  });

  it("drops and counts messages once a peer's queue is full, and tells Raft once", async () => {
    const [a, b] = await Promise.all([
      startNode(NODE_1, { tuning: { queueMessagesMax: 100 } }),
      startNode(NODE_2),
    ]);
    a.transport.addPeer(b.id, b.transport.url);
    await untilConnected(a, b.id);
    const accepted = Array.from({ length: 1_000 }, (_, i) => a.transport.send(heartbeat(a.id, b.id, i)));
    expect(accepted.filter(Boolean)).toHaveLength(100);
    expect(accepted.slice(0, 100).every(Boolean)).toBe(true);
    expect(a.transport.peerStats(b.id)).toMatchObject({ messagesDropped: 900, queuedMessages: 100 });
    expect(a.unreachable).toEqual([b.id]);
    expect(a.logger.find(/send queue full/, "warn")).toBeDefined();
    await waitFor(() => b.inbox.length === 100, "the queued messages delivered");
    expect(b.inbox.map((message) => message.commit)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(a.transport.send(heartbeat(a.id, b.id, 5_000))).toBe(true);
  });

  it("bounds a peer's queue by bytes as well as by messages", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { tuning: { queueBytesMax: 10_000 } }), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    await untilConnected(a, b.id);
    const big = (commit: number): Message => makeMessage({ type: MessageType.App, from: a.id, to: b.id, term: 1, logTerm: 1, commit, entries: makeEntries(1, 1, 1, 3_000) });
    const accepted = Array.from({ length: 10 }, (_, i) => a.transport.send(big(i)));
    expect(accepted.filter(Boolean)).toHaveLength(3);
    expect(a.transport.peerStats(b.id)?.queuedBytes).toBeLessThanOrEqual(10_000);
  });

  it("drops a message larger than the frame cap and counts it", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { tuning: { frameBytesMax: 4_096 } }), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    const huge = makeMessage({ type: MessageType.App, from: a.id, to: b.id, term: 1, logTerm: 1, entries: makeEntries(1, 1, 1, 5_000) });
    expect(a.transport.send(huge)).toBe(false);
    expect(a.transport.stats().messagesOversized).toBe(1);
    expect(a.transport.peerStats(b.id)?.messagesDropped).toBe(1);
  });

  it("reports a peer that went away as unreachable, drops its messages, and reconnects when it comes back", async () => {
    const a = await startNode(NODE_1);
    let b = await startNode(NODE_2);
    const port = Number(new URL(b.transport.url).port);
    a.transport.addPeer(b.id, b.transport.url);
    await untilConnected(a, b.id);
    a.transport.send(heartbeat(a.id, b.id, 1));
    await waitFor(() => b.inbox.length === 1, "first message");

    await b.transport.close();
    await waitFor(() => a.transport.peerStats(b.id)?.state === "backoff", "the loss noticed");
    expect(a.unreachable).toContain(b.id);
    expect(a.logger.find(/lost connection to peer/, "warn")).toBeDefined();
    expect(a.transport.send(heartbeat(a.id, b.id, 2))).toBe(false);
    await waitFor(() => (a.transport.peerStats(b.id)?.dialFailures ?? 0) >= 2, "redials while the peer is down");

    b = await startNode(NODE_2, { port });
    await untilConnected(a, b.id);
    expect(a.transport.peerStats(b.id)?.reconnects).toBe(1);
    expect(a.transport.peerStats(b.id)?.lastError).toBeNull();
    a.transport.send(heartbeat(a.id, b.id, 3));
    await waitFor(() => b.inbox.length === 1, "message after the reconnect");
    expect(b.inbox[0].commit).toBe(3);
  });

  it("moves a peer to a new URL and forgets a removed one", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1), startNode(NODE_2)]);
    a.transport.addPeer(b.id, "http://127.0.0.1:1");
    expect(() => a.transport.addPeer(b.id, b.transport.url)).toThrow(/already known/);
    a.transport.updatePeer(b.id, b.transport.url);
    await untilConnected(a, b.id);
    a.transport.send(heartbeat(a.id, b.id, 1));
    await waitFor(() => b.inbox.length === 1, "message to the new URL");
    a.transport.removePeer(b.id);
    expect(a.transport.hasPeer(b.id)).toBe(false);
    expect(a.transport.send(heartbeat(a.id, b.id, 2))).toBe(false);
    expect(a.transport.stats().messagesToUnknownPeers).toBe(1);
    expect(() => a.transport.updatePeer(b.id, b.transport.url)).toThrow(UnknownPeerError);
  });
});

describe("peer transport handshake", () => {
  async function expectRefused(dialer: TestNode, listener: TestNode, peerId: NodeId, code: number, pattern: RegExp): Promise<void> {
    dialer.transport.addPeer(peerId, listener.transport.url);
    await waitFor(() => dialer.refusals.length > 0, "the refusal reported to the dialer");
    const { error } = dialer.refusals[0];
    expect(error).toBeInstanceOf(HandshakeRefusedError);
    expect((error as HandshakeRefusedError).code).toBe(code);
    expect(error.message).toMatch(pattern);
    expect(dialer.logger.find(pattern, "error")).toBeDefined();
    expect(dialer.transport.peerStats(peerId)?.lastError).toMatch(pattern);
    expect(dialer.unreachable).toContain(peerId);
    await waitFor(() => listener.logger.find(pattern, "error") !== undefined, "the refusal logged by the listener");
    expect(listener.transport.stats().inboundRefused).toBeGreaterThan(0);
    expect(dialer.transport.send(heartbeat(dialer.id, peerId, 1))).toBe(false);
    expect(listener.inbox).toHaveLength(0);
  }

  it("refuses a peer from another cluster, with the reason logged on both sides", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { cluster: clusterId(0xbad) }), startNode(NODE_2)]);
    await expectRefused(a, b, b.id, RefuseCode.ClusterMismatch, /cluster id mismatch.*cluster bad/);
  });

  it("refuses a dialer that expected another node at this address", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1), startNode(NODE_2)]);
    await expectRefused(a, b, nodeId(0x99), RefuseCode.WrongNode, /wrong node: peer .* expected node 99/);
  });

  it("refuses a peer speaking another protocol version", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { protocolVersion: PROTOCOL_VERSION + 1 }), startNode(NODE_2)]);
    await expectRefused(a, b, b.id, RefuseCode.VersionMismatch, /protocol version mismatch/);
  });

  it("refuses a listener that answers as another node, telling it why", async () => {
    const a = await startNode(NODE_1);
    const received: Buffer[] = [];
    const impostor = createServer((socket) => {
      socket.on("data", (chunk) => {
        received.push(chunk);
        if (received.length === 1) socket.write(encodeFrame(FrameType.Accept, encodeAccept({ version: PROTOCOL_VERSION, clusterId: CLUSTER, nodeId: NODE_3 })));
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = impostor.address() as AddressInfo;
      a.transport.addPeer(NODE_2, `http://127.0.0.1:${port}`);
      await waitFor(() => a.refusals.length > 0, "the dialer's refusal");
      expect(a.refusals[0].error).toBeInstanceOf(HandshakeRejectedError);
      expect(a.refusals[0].error.message).toMatch(/expected node fd422379fda50e48 but node 3 answered/);
      expect(a.logger.find(/wrong node/, "error")).toBeDefined();
      // The impostor was told too: after our Hello it received a Refuse frame naming the problem.
      await waitFor(() => Buffer.concat(received).includes(Buffer.from("wrong node")), "the refusal sent to the listener");
    } finally {
      impostor.close();
    }
  });

  it("keeps retrying a refusing peer with backoff and logs the same reason only once", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1, { cluster: clusterId(0xbad) }), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    await waitFor(() => a.refusals.length >= 3, "several refused attempts");
    expect(a.logger.lines.filter((line) => /cluster id mismatch/.test(line.message))).toHaveLength(1);
  });
});

describe("peer transport on hostile input", () => {
  async function rawExchange(url: string, bytes: Buffer): Promise<Buffer> {
    const { port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port: Number(port) });
      const received: Buffer[] = [];
      socket.on("data", (chunk) => received.push(chunk));
      socket.on("error", () => {});
      socket.on("close", () => resolve(Buffer.concat(received)));
      socket.on("connect", () => socket.write(bytes));
      setTimeout(() => reject(new Error("server did not close the connection")), 5_000).unref();
    });
  }

  it("disconnects a client sending garbage and keeps serving its peers", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    const random = createPrng(42);
    for (let round = 0; round < 5; round++) {
      const garbage = Buffer.from(Array.from({ length: 64 + random.int(4_000) }, () => random.int(256)));
      await rawExchange(b.transport.url, garbage);
    }
    await rawExchange(b.transport.url, Buffer.from("GET /raft HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(b.transport.stats().inboundProtocolErrors).toBeGreaterThanOrEqual(5);
    expect(b.logger.find(/closed a peer connection before its handshake/, "warn")).toBeDefined();
    for (let i = 0; i < 10; i++) a.transport.send(heartbeat(a.id, b.id, i));
    await waitFor(() => b.inbox.length === 10, "messages after the garbage");
  });

  it("refuses a frame claiming more than the handshake allows without reading it", async () => {
    const b = await startNode(NODE_2);
    const header = Buffer.from([0x7f, 0xff, 0xff, 0xff, FrameType.Hello]);
    await rawExchange(b.transport.url, header);
    expect(b.logger.find(/exceeds the cap of 1024/)).toBeDefined();
  });

  it("closes an authenticated connection that sends a malformed message or impersonates another node", async () => {
    const b = await startNode(NODE_2);
    const hello = encodeFrame(FrameType.Hello, encodeHello({ version: PROTOCOL_VERSION, kind: ConnectionKind.Messages, clusterId: CLUSTER, sender: NODE_1, receiver: NODE_2 }));
    const good = encodeMessage(heartbeat(NODE_1, NODE_2, 1));
    const truncated = encodeFrame(FrameType.Message, good.subarray(0, good.length - 3));
    const answer = await rawExchange(b.transport.url, Buffer.concat([hello, encodeFrame(FrameType.Message, good), truncated]));
    expect(answer.readUInt8(4)).toBe(FrameType.Accept);
    expect(b.inbox).toHaveLength(1);
    await waitFor(() => b.logger.find(/message truncated/, "warn") !== undefined, "the bad message logged");

    const impostor = encodeFrame(FrameType.Message, encodeMessage(heartbeat(NODE_3, NODE_2, 2)));
    await rawExchange(b.transport.url, Buffer.concat([hello, impostor]));
    await waitFor(() => b.logger.find(/on the connection of node/, "warn") !== undefined, "the impostor logged");
    expect(b.inbox).toHaveLength(1);
  });

  it("turns away connections beyond the inbound cap", async () => {
    const b = await startNode(NODE_2, { tuning: { inboundConnectionsMax: 2, handshakeTimeoutMs: 1_000 } });
    const { port } = new URL(b.transport.url);
    const sockets = Array.from({ length: 3 }, () => connect({ host: "127.0.0.1", port: Number(port) }).on("error", () => {}));
    try {
      await waitFor(() => b.transport.stats().inboundRefused === 1, "the third connection refused");
      expect(b.logger.find(/too many connections/, "warn")).toBeDefined();
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it("closes a connection that never completes its handshake", async () => {
    const b = await startNode(NODE_2, { tuning: { handshakeTimeoutMs: 100 } });
    const started = performance.now();
    await rawExchange(b.transport.url, Buffer.from([0, 0]));
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(b.logger.find(/no handshake within 100 ms/, "warn")).toBeDefined();
  });
});

describe("peer transport snapshots", () => {
  async function* generate(totalBytes: number, chunkBytes: number, seed: number): AsyncGenerator<Uint8Array> {
    let sent = 0;
    let value = seed;
    while (sent < totalBytes) {
      const chunk = new Uint8Array(Math.min(chunkBytes, totalBytes - sent));
      for (let i = 0; i < chunk.length; i += 512) chunk[i] = value++ & 0xff;
      sent += chunk.length;
      yield chunk;
    }
  }

  function snapMessage(from: NodeId, to: NodeId): Message {
    return makeMessage({
      type: MessageType.Snap, from, to, term: 4,
      snapshot: { metadata: { index: 500, term: 3, confState: { voters: [from, to], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array(0) },
    });
  }

  it("streams a large snapshot on its own connection while heartbeats keep flowing", async () => {
    const totalBytes = 48 * 1024 * 1024;
    const chunkBytes = 256 * 1024;
    let expectedChecksum = 0;
    for await (const chunk of generate(totalBytes, chunkBytes, 7)) expectedChecksum = crc32c(chunk, expectedChecksum);

    const heartbeatTimes: number[] = [];
    const received = { message: null as Message | null, bytes: 0, checksum: 0, startedAt: 0, endedAt: 0 };
    const a = await startNode(NODE_1);
    const b = await startNode(NODE_2, {
      tuning: { snapshotBufferBytesMax: 1024 * 1024 },
      onMessage: () => heartbeatTimes.push(performance.now()),
      onSnapshot: async (message, data) => {
        received.message = message;
        received.startedAt = performance.now();
        for await (const chunk of data) {
          received.bytes += chunk.length;
          received.checksum = crc32c(chunk, received.checksum);
          // A slow consumer: the socket must be paused, not buffered without bound.
          await new Promise((resolve) => setImmediate(resolve));
        }
        received.endedAt = performance.now();
      },
    });
    a.transport.addPeer(b.id, b.transport.url);
    await untilConnected(a, b.id);

    let beat = 0;
    const timer = setInterval(() => a.transport.send(heartbeat(a.id, b.id, beat++)), 2);
    try {
      await a.transport.sendSnapshot(snapMessage(a.id, b.id), generate(totalBytes, chunkBytes, 7));
    } finally {
      clearInterval(timer);
    }
    expect(received.bytes).toBe(totalBytes);
    expect(received.checksum).toBe(expectedChecksum);
    expect(received.message?.snapshot?.metadata).toMatchObject({ index: 500, term: 3 });
    const during = heartbeatTimes.filter((time) => time >= received.startedAt && time <= received.endedAt);
    expect(during.length).toBeGreaterThan(10);
    const gaps = during.slice(1).map((time, i) => time - during[i]);
    expect(Math.max(...gaps)).toBeLessThan(500);
    expect(a.transport.peerStats(b.id)).toMatchObject({ snapshotsSent: 1, snapshotsFailed: 0 });
    expect(b.transport.stats().snapshotsReceived).toBe(1);
  });

  it("gives up on a receiver that stops taking data", async () => {
    const a = await startNode(NODE_1, { tuning: { snapshotStallTimeoutMs: 200 } });
    let release: () => void = () => {};
    const b = await startNode(NODE_2, {
      tuning: { snapshotBufferBytesMax: 64 * 1024, snapshotStallTimeoutMs: 600 },
      onSnapshot: (_message, data) => new Promise<void>((resolve) => {
        release = resolve;
        void data;
      }),
    });
    a.transport.addPeer(b.id, b.transport.url);
    const started = performance.now();
    await expect(a.transport.sendSnapshot(snapMessage(a.id, b.id), generate(64 * 1024 * 1024, 1024 * 1024, 1))).rejects.toThrow(/took no data for 200 ms/);
    expect(performance.now() - started).toBeLessThan(5_000);
    await waitFor(() => b.transport.stats().snapshotsReceiveFailed === 1, "the receiver gave up too");
    expect(b.logger.find(/consumer took no data for 600 ms/, "warn")).toBeDefined();
    release();
  });

  it("reports a snapshot the receiver refuses, a source that fails, and a second snapshot to a busy peer", async () => {
    let refuse = true;
    const a = await startNode(NODE_1);
    const b = await startNode(NODE_2, {
      onSnapshot: async (_message, data) => {
        if (refuse) throw new Error("disk full");
        for await (const _chunk of data) { /* accept */ }
      },
    });
    a.transport.addPeer(b.id, b.transport.url);
    const refused = a.transport.sendSnapshot(snapMessage(a.id, b.id), generate(4 * 1024 * 1024, 64 * 1024, 1));
    await expect(a.transport.sendSnapshot(snapMessage(a.id, b.id), generate(10, 10, 1))).rejects.toThrow(SnapshotBusyError);
    await expect(refused).rejects.toThrow(SnapshotSendError);
    await expect(refused).rejects.toThrow(/disk full/);
    expect(b.logger.find(/snapshot from peer failed: disk full/, "warn")).toBeDefined();

    refuse = false;
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1_000);
      throw new Error("snapshot file vanished");
    }
    await expect(a.transport.sendSnapshot(snapMessage(a.id, b.id), broken())).rejects.toThrow(/snapshot file vanished/);
    await waitFor(() => b.transport.stats().snapshotsReceiveFailed === 2, "the receiver saw the broken stream");

    await a.transport.sendSnapshot(snapMessage(a.id, b.id), generate(100_000, 7_000, 3));
    expect(a.transport.peerStats(b.id)).toMatchObject({ snapshotsSent: 1, snapshotsFailed: 2 });
  });
});

describe("peer transport lifetime", () => {
  it("closes idempotently, resolves closed(), and refuses work afterwards", async () => {
    const [a, b] = await Promise.all([startNode(NODE_1), startNode(NODE_2)]);
    a.transport.addPeer(b.id, b.transport.url);
    b.transport.addPeer(a.id, a.transport.url);
    await untilConnected(a, b.id);
    await untilConnected(b, a.id);
    const first = a.transport.close();
    expect(a.transport.close()).toBe(first);
    await first;
    await a.transport.closed();
    expect(a.transport.send(heartbeat(a.id, b.id, 1))).toBe(false);
    await expect(a.transport.sendSnapshot(makeMessage({
      type: MessageType.Snap, from: a.id, to: b.id,
      snapshot: { metadata: { index: 1, term: 1, confState: { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array(0) },
    }), (async function* () {})())).rejects.toThrow(TransportClosedError);
    expect(() => a.transport.addPeer(NODE_3, b.transport.url)).toThrow(TransportClosedError);
    await waitFor(() => b.transport.peerStats(a.id)?.state !== "connected", "the peer noticed the close");
  });

  it("leaves no sockets, servers or timers behind once closed", async () => {
    const handles = (): number => process.getActiveResourcesInfo().filter((name) => /TCP|Timeout|TLS/.test(name)).length;
    await new Promise((resolve) => setTimeout(resolve, 10));
    const before = handles();
    const nodes = await Promise.all([startNode(NODE_1), startNode(NODE_2), startNode(NODE_3)]);
    connectAll(nodes);
    // One peer that never answers keeps a link in backoff, with its timer armed.
    nodes[0].transport.addPeer(nodeId(0x77), "http://127.0.0.1:1");
    for (const node of nodes) await untilConnected(node, nodes[(nodes.indexOf(node) + 1) % 3].id);
    nodes[0].transport.send(heartbeat(NODE_1, NODE_2, 1));
    expect(handles()).toBeGreaterThan(before);
    await Promise.all(nodes.map((node) => node.transport.close()));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(handles()).toBeLessThanOrEqual(before);
  });
});
