/**
 * PeerTransport: Raft messages between the nodes of one cluster over TCP or
 * TLS.
 *
 * Each node listens on its peer URL and dials every peer it knows; a node's
 * outbound connection to a peer carries that node's messages to it, so each
 * pair of nodes shares two long-lived connections, one per direction, plus a
 * short-lived connection per snapshot. Every connection starts with the
 * handshake of handshake.ts; nothing a peer sends is trusted before it.
 *
 * Failures are reported, not hidden: a peer that cannot be reached makes
 * `onUnreachable` fire (Raft then probes it gently), a peer that refuses us
 * makes `onPeerRefused` fire and is logged as an error on both sides, and
 * every drop is counted in the peer's stats.
 */
import { createServer as createTcpServer, connect as connectTcp, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, connect as connectTls, type TLSSocket } from "node:tls";
import { assert } from "../lib/assert.js";
import { formatId, type ClusterId, type NodeId } from "../lib/ids.js";
import { limits } from "../lib/limits.js";
import { MessageType, type Message } from "../raft/types.js";
import { encodedMessageBytes, decodeMessage } from "./codec.js";
import {
  HandshakeRefusedError, HandshakeRejectedError, ProtocolViolationError, SnapshotBusyError, SnapshotSendError,
  TransportClosedError, TransportConfigError, TransportTimeoutError, UnknownPeerError,
} from "./errors.js";
import { FRAME_HEADER_BYTES, FrameType } from "./frame.js";
import { FramedSocket } from "./framed-socket.js";
import {
  ConnectionKind, HANDSHAKE_FRAME_BYTES_MAX, PROTOCOL_VERSION, RefuseCode, checkAccept, checkHello, decodeAccept,
  decodeHello, decodeRefusal, encodeAccept, encodeHello, readHandshakeVersion, type LocalIdentity, type Refusal,
} from "./handshake.js";
import { silentLogger, type TransportLogger } from "./logger.js";
import { PeerLink, type PeerStats } from "./peer-link.js";
import { formatPeerUrl, parsePeerUrl, type PeerAddress } from "./peer-url.js";
import { receiveSnapshotStream, sendSnapshotStream } from "./snapshot-stream.js";
import { loadPeerTls, type LoadedTls, type PeerTlsConfig } from "./tls-config.js";

/** Knobs with their defaults; the queue and frame bounds come from src/lib/limits.ts. */
export interface TransportTuning {
  /** Messages queued to one peer before new ones are dropped. */
  readonly queueMessagesMax: number;
  /** Encoded bytes queued to one peer before new messages are dropped. */
  readonly queueBytesMax: number;
  /** Largest frame accepted or sent; a Raft message above it is dropped. */
  readonly frameBytesMax: number;
  /** Bytes per socket write when batching queued messages (one message may exceed it). */
  readonly batchBytesMax: number;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** Connect plus handshake, for a dial. */
  readonly dialTimeoutMs: number;
  /** How long an accepted connection may take to send its Hello. */
  readonly handshakeTimeoutMs: number;
  /** Data bytes per snapshot frame. */
  readonly snapshotChunkBytes: number;
  /** Snapshot bytes a receiver buffers ahead of its consumer before pausing the socket. */
  readonly snapshotBufferBytesMax: number;
  /** How long either end of a snapshot stream waits for the other to take more data before giving up. */
  readonly snapshotStallTimeoutMs: number;
  /** How long a sender waits, after the last byte, for the receiver to install the snapshot. */
  readonly snapshotResultTimeoutMs: number;
  /** Accepted connections at once (each peer uses one, plus one per snapshot). */
  readonly inboundConnectionsMax: number;
  /** Time a peer gets to read a refusal or final answer before the socket is destroyed. */
  readonly closeGraceMs: number;
}

/**
 * TCP keepalive on every peer connection: a peer that vanished without a FIN
 * (power loss, a dropped route) is otherwise noticed only when a write
 * times out, which can take many minutes on an idle inbound connection.
 */
const KEEPALIVE_DELAY_MS = 10_000;

export const DEFAULT_TUNING: TransportTuning = {
  queueMessagesMax: limits.peerQueueMessagesMax,
  queueBytesMax: limits.peerQueueBytesMax,
  frameBytesMax: limits.frameBytesMax,
  batchBytesMax: 1024 * 1024,
  backoffMsMin: 100,
  backoffMsMax: 5_000,
  dialTimeoutMs: 5_000,
  handshakeTimeoutMs: 5_000,
  snapshotChunkBytes: 1024 * 1024,
  snapshotBufferBytesMax: 8 * 1024 * 1024,
  snapshotStallTimeoutMs: 30_000,
  snapshotResultTimeoutMs: 60_000,
  inboundConnectionsMax: 1024,
  closeGraceMs: 1_000,
};

export interface PeerTransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: ClusterId;
  /** http://host:port (plaintext) or https://host:port (TLS); port 0 picks a free port, see `url`. */
  readonly listenUrl: string;
  /** Needed to listen on https:// and to dial https:// peers (etcd's --peer-* TLS flags). */
  readonly tls?: PeerTlsConfig;
  /** A pino logger fits; silent when absent. */
  readonly logger?: TransportLogger;
  /** Every Raft message that arrived from a peer and was addressed to this node. Must not throw; errors are logged. */
  readonly onMessage: (message: Message) => void;
  /**
   * A snapshot arrived: `message` is the Snap message (its snapshot's data is
   * empty), `data` the snapshot's bytes. Resolve once installed; the sender
   * is told success only then. Reject to refuse it.
   */
  readonly onSnapshot: (message: Message, data: AsyncIterable<Uint8Array>) => Promise<void>;
  /** What a joining member is told about the cluster (see ConnectionKind.Discover); absent: refuse discovery. */
  readonly onDiscover?: () => Uint8Array;
  /** A peer could not be reached, lost its connection or overflowed its queue (Raft: reportUnreachable). */
  readonly onUnreachable?: (peer: NodeId) => void;
  /** A peer refused our handshake, or answered as the wrong node or cluster; the error carries the reason. */
  readonly onPeerRefused?: (peer: NodeId, error: HandshakeRefusedError | HandshakeRejectedError) => void;
  readonly tuning?: Partial<TransportTuning>;
  /** Jitter source in [0, 1) for reconnect backoff. */
  readonly random?: () => number;
  /** For tests only: speak another protocol version to exercise the version check. */
  readonly protocolVersion?: number;
}

export interface TransportStats {
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Messages addressed to another node, discarded. */
  readonly messagesMisaddressed: number;
  /** send() calls for a peer this transport does not know. */
  readonly messagesToUnknownPeers: number;
  /** send() calls whose message exceeds the frame cap. */
  readonly messagesOversized: number;
  readonly inboundRefused: number;
  /** Accepted connections closed because they broke the protocol (bad frames, garbage, bad messages). */
  readonly inboundProtocolErrors: number;
  readonly snapshotsReceived: number;
  readonly snapshotsReceiveFailed: number;
}

export interface SnapshotSendOptionsPublic {
  readonly signal?: AbortSignal;
}

export class PeerTransport {
  private readonly tuning: TransportTuning;
  private readonly logger: TransportLogger;
  private readonly identity: LocalIdentity;
  private readonly tls: LoadedTls | null;
  private readonly listenAddress: PeerAddress;
  private readonly server: Server;
  private readonly peers = new Map<NodeId, PeerLink>();
  private readonly sockets = new Set<FramedSocket>();
  /** The newest accepted messages connection of each peer; an older one is closed when a newer arrives. */
  private readonly inboundMessages = new Map<NodeId, FramedSocket>();
  private readonly snapshotSends = new Map<NodeId, AbortController>();
  private boundPort = 0;
  private readonly rawInbound = new Set<Socket>();
  private closing = false;
  private serverClosed = false;
  private resolveClosed: () => void = () => {};
  private readonly closedPromise: Promise<void>;
  private counters = {
    messagesReceived: 0, bytesReceived: 0, messagesMisaddressed: 0, messagesToUnknownPeers: 0, messagesOversized: 0,
    inboundRefused: 0, inboundProtocolErrors: 0, snapshotsReceived: 0, snapshotsReceiveFailed: 0,
  };

  /** Starts listening; resolves once the port is bound. */
  static async listen(options: PeerTransportOptions): Promise<PeerTransport> {
    const transport = new PeerTransport(options);
    await transport.startListening();
    return transport;
  }

  private constructor(private readonly options: PeerTransportOptions) {
    assert(options.nodeId !== 0n, "a transport needs a non-zero node id");
    this.tuning = { ...DEFAULT_TUNING, ...options.tuning };
    assert(this.tuning.frameBytesMax >= HANDSHAKE_FRAME_BYTES_MAX, "frame cap below the handshake frame size");
    this.logger = options.logger ?? silentLogger;
    this.identity = { version: options.protocolVersion ?? PROTOCOL_VERSION, clusterId: options.clusterId, nodeId: options.nodeId };
    this.tls = options.tls === undefined ? null : loadPeerTls(options.tls);
    this.listenAddress = parsePeerUrl(options.listenUrl);
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    if (this.listenAddress.secure) {
      const serverOptions = this.tls?.server;
      if (serverOptions === undefined || serverOptions === null) {
        throw new TransportConfigError(`listening on ${options.listenUrl} needs --peer-cert-file and --peer-key-file`);
      }
      const server = createTlsServer({ ...serverOptions, handshakeTimeout: this.tuning.handshakeTimeoutMs }, (socket) => this.onInbound(socket));
      server.on("tlsClientError", (error, socket: TLSSocket) => {
        this.counters.inboundRefused++;
        const reason = error.message.trim();
        this.logger.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, reason }, `refused a peer connection: TLS handshake failed: ${reason}`);
      });
      this.server = server;
    } else {
      this.server = createTcpServer((socket) => this.onInbound(socket));
    }
    // Raw sockets, tracked from accept on: a TLS connection is not a FramedSocket until its TLS handshake is done, but close() must still end it.
    this.server.on("connection", (socket: Socket) => {
      if (this.rawInbound.size >= this.tuning.inboundConnectionsMax) {
        this.counters.inboundRefused++;
        this.logger.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, inboundConnectionsMax: this.tuning.inboundConnectionsMax },
          "refused a peer connection: too many connections");
        socket.destroy();
        return;
      }
      this.rawInbound.add(socket);
      socket.once("close", () => this.rawInbound.delete(socket));
    });
    this.server.on("error", (error) => this.logger.error({ reason: error.message }, `peer listener error: ${error.message}`));
  }

  /** The URL this transport listens on, with the actual port. */
  get url(): string {
    return formatPeerUrl({ ...this.listenAddress, port: this.boundPort });
  }

  get nodeId(): NodeId {
    return this.options.nodeId;
  }

  addPeer(id: NodeId, url: string): void {
    this.assertOpen();
    assert(id !== this.options.nodeId && id !== 0n, () => `cannot add node ${formatId(id)} as its own peer`);
    if (this.peers.has(id)) throw new TransportConfigError(`peer ${formatId(id)} is already known; use updatePeer to change its URL`);
    const address = this.peerAddress(url);
    this.peers.set(id, new PeerLink(id, address, url, this.linkEnvironment()));
  }

  updatePeer(id: NodeId, url: string): void {
    this.assertOpen();
    const link = this.peers.get(id);
    if (link === undefined) throw new UnknownPeerError(`peer ${formatId(id)} is not known`);
    link.updateAddress(this.peerAddress(url), url);
  }

  /** Forgets a peer: its queue is dropped, its connections closed, a snapshot to it aborted. */
  removePeer(id: NodeId): void {
    const link = this.peers.get(id);
    if (link === undefined) return;
    link.stop();
    this.peers.delete(id);
    this.snapshotSends.get(id)?.abort();
    this.inboundMessages.get(id)?.destroy();
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  /**
   * Queues a Raft message for its `to` peer and returns at once: true if
   * queued, false if dropped (unknown peer, full queue, peer unreachable,
   * message over the frame cap, transport closed). Never waits, never throws
   * for a condition of the network.
   */
  send(message: Message): boolean {
    assert(message.from === this.options.nodeId, "a transport only sends its own node's messages");
    if (this.closing) return false;
    const link = this.peers.get(message.to);
    if (link === undefined) {
      this.counters.messagesToUnknownPeers++;
      return false;
    }
    const bytes = encodedMessageBytes(message);
    if (bytes > this.tuning.frameBytesMax) {
      this.counters.messagesOversized++;
      this.logger.error({ peer: formatId(message.to), bytes, frameBytesMax: this.tuning.frameBytesMax },
        "dropping a Raft message larger than the frame cap");
      link.countDrop();
      return false;
    }
    return link.send(message, bytes);
  }

  /**
   * Streams a snapshot to `message.to` on a connection of its own. `message`
   * is the Snap message (its snapshot's data field is ignored: the bytes come
   * from `chunks`). Resolves once the receiver has installed it; rejects with
   * SnapshotSendError (its cause says why) otherwise. One snapshot per peer
   * at a time.
   */
  async sendSnapshot(message: Message, chunks: AsyncIterable<Uint8Array>, options: SnapshotSendOptionsPublic = {}): Promise<void> {
    if (this.closing) throw new TransportClosedError("transport is closed");
    assert(message.type === MessageType.Snap && message.snapshot !== null, "sendSnapshot needs a Snap message with a snapshot");
    assert(message.from === this.options.nodeId, "a transport only sends its own node's messages");
    const peer = message.to;
    const link = this.peers.get(peer);
    if (link === undefined) throw new UnknownPeerError(`peer ${formatId(peer)} is not known`);
    if (this.snapshotSends.has(peer)) throw new SnapshotBusyError(`a snapshot to peer ${formatId(peer)} is already being sent`);
    const controller = new AbortController();
    this.snapshotSends.set(peer, controller);
    const signal = options.signal === undefined ? controller.signal : AbortSignal.any([controller.signal, options.signal]);
    const started = performance.now();
    try {
      const connection = await this.dial(peer, link.currentAddress, ConnectionKind.Snapshot, signal);
      const bytes = await sendSnapshotStream(connection, message, chunks, {
        chunkBytes: this.tuning.snapshotChunkBytes, resultTimeoutMs: this.tuning.snapshotResultTimeoutMs,
        stallTimeoutMs: this.tuning.snapshotStallTimeoutMs, signal,
      });
      link.countSnapshot(true);
      this.logger.info({ peer: formatId(peer), bytes, durationMs: Math.round(performance.now() - started) }, "sent snapshot to peer");
    } catch (error) {
      link.countSnapshot(false);
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn({ peer: formatId(peer), reason }, `sending snapshot to peer failed: ${reason}`);
      throw new SnapshotSendError(`snapshot to peer ${formatId(peer)} failed: ${reason}`, { cause: error });
    } finally {
      this.snapshotSends.delete(peer);
    }
  }

  peerStats(id: NodeId): PeerStats | undefined {
    return this.peers.get(id)?.stats();
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  /** Stops listening, closes every connection, drops every queue; idempotent. Resolves when all sockets are closed. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      for (const link of this.peers.values()) link.stop();
      this.peers.clear();
      for (const controller of this.snapshotSends.values()) controller.abort();
      for (const socket of this.sockets) socket.destroy(new TransportClosedError("transport closed"));
      for (const socket of this.rawInbound) socket.destroy();
      if (this.server.listening) {
        this.server.close(() => {
          this.serverClosed = true;
          this.maybeClosed();
        });
      } else {
        this.serverClosed = true;
      }
      this.maybeClosed();
    }
    return this.closedPromise;
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  private startListening(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(new TransportConfigError(`cannot listen on ${this.options.listenUrl}: ${error.message}`, { cause: error }));
      this.server.once("error", onError);
      this.server.listen(this.listenAddress.port, this.listenAddress.host, () => {
        this.server.off("error", onError);
        const address = this.server.address();
        assert(address !== null && typeof address === "object", "a TCP listener has an address");
        this.boundPort = address.port;
        this.logger.info({ url: this.url, node: formatId(this.options.nodeId) }, "peer transport listening");
        resolve();
      });
    });
  }

  private maybeClosed(): void {
    if (this.closing && this.serverClosed && this.sockets.size === 0) this.resolveClosed();
  }

  private assertOpen(): void {
    if (this.closing) throw new TransportClosedError("transport is closed");
  }

  private peerAddress(url: string): PeerAddress {
    const address = parsePeerUrl(url);
    if (address.secure && this.tls === null) {
      throw new TransportConfigError(`peer URL ${url} is https:// but no peer TLS is configured (--peer-trusted-ca-file)`);
    }
    return address;
  }

  private linkEnvironment() {
    return {
      logger: this.logger,
      queueMessagesMax: this.tuning.queueMessagesMax,
      queueBytesMax: this.tuning.queueBytesMax,
      batchBytesMax: this.tuning.batchBytesMax,
      backoff: { delayMsMin: this.tuning.backoffMsMin, delayMsMax: this.tuning.backoffMsMax },
      random: this.options.random ?? Math.random,
      dialMessages: (peer: NodeId, address: PeerAddress) => this.dial(peer, address, ConnectionKind.Messages),
      onUnreachable: (peer: NodeId) => this.callback(() => this.options.onUnreachable?.(peer)),
      onRefused: (peer: NodeId, error: HandshakeRefusedError | HandshakeRejectedError) =>
        this.callback(() => this.options.onPeerRefused?.(peer, error)),
    };
  }

  /** Runs an application callback; its exceptions are logged, never allowed to break a connection's bookkeeping. */
  private callback(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.logger.error({ reason: String(error) }, "transport callback threw");
    }
  }

  private track(socket: Socket): FramedSocket {
    const framed = new FramedSocket(socket, HANDSHAKE_FRAME_BYTES_MAX);
    this.sockets.add(framed);
    socket.once("close", () => {
      this.sockets.delete(framed);
      this.maybeClosed();
    });
    return framed;
  }

  /** Connects and completes the handshake; resolves with a connection ready for its kind. */
  private dial(peer: NodeId, address: PeerAddress, kind: ConnectionKind, signal?: AbortSignal): Promise<FramedSocket> {
    if (this.closing) return Promise.reject(new TransportClosedError("transport is closed"));
    const socket = address.secure
      ? connectTls({ ...this.tls?.client, host: address.host, port: address.port })
      : connectTcp({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const connection = this.track(socket);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        cancelTimer();
        signal?.removeEventListener("abort", onAbort);
        if (error === null) resolve(connection);
        else {
          connection.destroy(error);
          reject(error);
        }
      };
      const onAbort = (): void => finish(new TransportClosedError("dial aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const cancelTimer = connection.startTimer(this.tuning.dialTimeoutMs, () =>
        finish(new TransportTimeoutError(`no handshake from ${formatPeerUrl(address)} within ${this.tuning.dialTimeoutMs} ms`)));
      socket.once(address.secure ? "secureConnect" : "connect", () => {
        socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
        connection.writeFrame(FrameType.Hello, encodeHello({
          version: this.identity.version, kind, clusterId: this.identity.clusterId, sender: this.identity.nodeId, receiver: peer,
        }));
      });
      connection.setCloseHandler((error) => finish(error ?? new TransportClosedError("connection closed during the handshake")));
      connection.setFrameHandler((type, payload) => {
        if (type === FrameType.Refuse) {
          const refusal = decodeRefusal(payload);
          finish(new HandshakeRefusedError(refusal.code, refusal.reason));
          return;
        }
        if (type !== FrameType.Accept) throw new ProtocolViolationError(`expected a handshake answer, got frame type ${type}`);
        const accept = decodeAccept(payload);
        const refusal = checkAccept(this.identity, peer, accept);
        if (refusal !== null) {
          // Tell the listener too, so the mistake shows in both nodes' logs.
          const error = new HandshakeRejectedError(refusal.code, refusal.reason);
          settled = true;
          cancelTimer();
          signal?.removeEventListener("abort", onAbort);
          connection.refuse(refusal, this.tuning.closeGraceMs, error);
          reject(error);
          return;
        }
        connection.setCloseHandler(() => {});
        finish(null);
      });
    });
  }

  private onInbound(socket: Socket): void {
    const connection = this.track(socket);
    const remote = connection.remoteAddress;
    if (this.closing) {
      connection.refuse({ code: RefuseCode.ShuttingDown, reason: "node is shutting down" }, this.tuning.closeGraceMs);
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    const cancelTimer = connection.startTimer(this.tuning.handshakeTimeoutMs, () => {
      this.counters.inboundRefused++;
      this.logger.warn({ remote }, `closed a peer connection: no handshake within ${this.tuning.handshakeTimeoutMs} ms`);
      connection.destroy(new TransportTimeoutError("no handshake"));
    });
    connection.setCloseHandler((error) => this.onInboundClosedEarly(remote, error));
    connection.setFrameHandler((type, payload) => {
      cancelTimer();
      if (type !== FrameType.Hello) throw new ProtocolViolationError(`expected a handshake, got frame type ${type}`);
      const refusal = this.checkInboundHello(payload);
      if ("code" in refusal) {
        this.counters.inboundRefused++;
        this.logger.error({ remote, reason: refusal.reason }, `refused a peer connection: ${refusal.reason}`);
        connection.setCloseHandler(() => {});
        connection.refuse(refusal, this.tuning.closeGraceMs);
        return;
      }
      const hello = refusal.hello;
      if (hello.kind === ConnectionKind.Discover) {
        this.answerDiscovery(connection, remote);
        return;
      }
      connection.writeFrame(FrameType.Accept, encodeAccept(this.identity));
      connection.setFrameBytesMax(this.tuning.frameBytesMax);
      if (hello.kind === ConnectionKind.Messages) this.serveMessages(connection, hello.sender, remote);
      else this.serveSnapshot(connection, hello.sender);
    });
  }

  private answerDiscovery(connection: FramedSocket, remote: string): void {
    const describe = this.options.onDiscover;
    connection.setCloseHandler(() => {});
    if (!describe) {
      connection.refuse({ code: RefuseCode.ProtocolViolation, reason: "this node does not answer discovery" }, this.tuning.closeGraceMs);
      return;
    }
    this.logger.info({ remote }, "answered a discovery request from a joining member");
    connection.finish(FrameType.Discovery, describe(), this.tuning.closeGraceMs);
  }

  private onInboundClosedEarly(remote: string, error: Error | null): void {
    if (error === null || error instanceof TransportClosedError || error instanceof TransportTimeoutError) return;
    this.counters.inboundProtocolErrors++;
    this.logger.warn({ remote, reason: error.message }, `closed a peer connection before its handshake: ${error.message}`);
  }

  private checkInboundHello(payload: Buffer): Refusal | { hello: ReturnType<typeof decodeHello> } {
    let version: number;
    try {
      version = readHandshakeVersion(payload);
    } catch (error) {
      return { code: RefuseCode.BadHandshake, reason: `bad handshake: ${(error as Error).message}` };
    }
    if (version !== this.identity.version) {
      return { code: RefuseCode.VersionMismatch, reason: `protocol version mismatch: node ${formatId(this.identity.nodeId)} speaks version ${this.identity.version}, the peer speaks version ${version}` };
    }
    let hello: ReturnType<typeof decodeHello>;
    try {
      hello = decodeHello(payload);
    } catch (error) {
      return { code: RefuseCode.BadHandshake, reason: `bad handshake: ${(error as Error).message}` };
    }
    return checkHello(this.identity, hello) ?? { hello };
  }

  private serveMessages(connection: FramedSocket, peer: NodeId, remote: string): void {
    const previous = this.inboundMessages.get(peer);
    this.inboundMessages.set(peer, connection);
    // A peer dials again only when it believes its old connection dead; a half-open one would linger until keepalive notices.
    previous?.destroy(new TransportClosedError("replaced by a newer connection from the same peer"));
    const peerName = formatId(peer);
    this.logger.info({ peer: peerName, remote }, "accepted peer connection");
    connection.setCloseHandler((error) => {
      if (this.inboundMessages.get(peer) === connection) this.inboundMessages.delete(peer);
      if (error !== null && !(error instanceof TransportClosedError)) {
        this.counters.inboundProtocolErrors++;
        this.logger.warn({ peer: peerName, remote, reason: error.message }, `closed connection from peer: ${error.message}`);
      }
    });
    connection.setFrameHandler((type, payload) => {
      if (type !== FrameType.Message) throw new ProtocolViolationError(`unexpected frame type ${type} on a messages connection`);
      const message = decodeMessage(payload);
      if (message.from !== peer) {
        throw new ProtocolViolationError(`message from node ${formatId(message.from)} on the connection of node ${peerName}`);
      }
      if (message.to !== this.options.nodeId) {
        this.counters.messagesMisaddressed++;
        return;
      }
      this.counters.messagesReceived++;
      this.counters.bytesReceived += payload.length + FRAME_HEADER_BYTES;
      this.callback(() => this.options.onMessage(message));
    });
  }

  private serveSnapshot(connection: FramedSocket, peer: NodeId): void {
    receiveSnapshotStream(connection, {
      localNodeId: this.options.nodeId,
      peer,
      bufferBytesMax: this.tuning.snapshotBufferBytesMax,
      stallTimeoutMs: this.tuning.snapshotStallTimeoutMs,
      graceMs: this.tuning.closeGraceMs,
      logger: this.logger,
      onSnapshot: this.options.onSnapshot,
      onDone: (ok) => {
        if (ok) this.counters.snapshotsReceived++;
        else this.counters.snapshotsReceiveFailed++;
      },
    });
  }
}
