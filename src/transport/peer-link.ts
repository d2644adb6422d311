/**
 * The outbound side of one peer: a bounded queue of Raft messages and the
 * long-lived connection that carries them.
 *
 * send() never waits (ARCHITECTURE.md, backpressure rules): a message goes
 * into the queue or is dropped and counted. Raft tolerates loss and retries
 * on its own schedule, so holding stale heartbeats for a dead peer would only
 * waste memory. Messages queued in one turn of the event loop, and all
 * messages queued while a socket write is in flight, leave in a single write
 * of many frames.
 */
import { assert } from "../lib/assert.js";
import { formatId, type NodeId } from "../lib/ids.js";
import type { Message } from "../raft/types.js";
import { backoffDelayMs, type BackoffPolicy } from "./backoff.js";
import { encodeMessageInto } from "./codec.js";
import { HandshakeRefusedError, HandshakeRejectedError } from "./errors.js";
import { FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from "./frame.js";
import type { FramedSocket } from "./framed-socket.js";
import { decodeRefusal } from "./handshake.js";
import type { TransportLogger } from "./logger.js";
import type { PeerAddress } from "./peer-url.js";

export type PeerState = "connecting" | "connected" | "backoff" | "stopped";

export interface PeerStats {
  readonly state: PeerState;
  readonly url: string;
  /** Messages written to the socket. */
  readonly messagesSent: number;
  /** Messages refused by a full queue, dropped while the peer was unreachable, or lost with a broken connection. */
  readonly messagesDropped: number;
  readonly bytesSent: number;
  /** Socket writes; messagesSent / writes is the batching factor. */
  readonly writes: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Handshakes that succeeded. */
  readonly connects: number;
  /** Successful handshakes after the first one (the connection was lost or never came up, then did). */
  readonly reconnects: number;
  readonly dialFailures: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  /** The last reason the peer could not be reached, until the next successful handshake. */
  readonly lastError: string | null;
}

export interface PeerLinkEnvironment {
  readonly logger: TransportLogger;
  readonly queueMessagesMax: number;
  readonly queueBytesMax: number;
  readonly batchBytesMax: number;
  readonly backoff: BackoffPolicy;
  readonly random: () => number;
  dialMessages(peer: NodeId, address: PeerAddress): Promise<FramedSocket>;
  onUnreachable(peer: NodeId): void;
  onRefused(peer: NodeId, error: HandshakeRefusedError | HandshakeRejectedError): void;
}

export class PeerLink {
  private state: PeerState = "connecting";
  private connection: FramedSocket | null = null;
  /** Ring buffer of queued messages and their encoded sizes. */
  private readonly ring: (Message | null)[];
  private readonly sizes: Uint32Array;
  private head = 0;
  private count = 0;
  private queuedBytes = 0;
  private writeInFlight = false;
  private flushScheduled = false;
  private attempt = 0;
  private backoffTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped on every (re)connect and on stop, so late callbacks of an older connection are ignored. */
  private generation = 0;
  /** Set after the first drop of a full queue, so Raft hears "unreachable" once per overflow, not once per message. */
  private overflowing = false;
  /** The failure last logged, so a peer that stays down does not fill the log with the same line. */
  private lastLoggedFailure: string | null = null;
  private counters = {
    messagesSent: 0, messagesDropped: 0, bytesSent: 0, writes: 0,
    connects: 0, dialFailures: 0, snapshotsSent: 0, snapshotsFailed: 0,
  };
  private lastError: string | null = null;

  constructor(readonly id: NodeId, private address: PeerAddress, private url: string, private readonly environment: PeerLinkEnvironment) {
    this.ring = new Array(environment.queueMessagesMax).fill(null);
    this.sizes = new Uint32Array(environment.queueMessagesMax);
    this.connect();
  }

  stats(): PeerStats {
    return {
      state: this.state, url: this.url, ...this.counters,
      reconnects: Math.max(0, this.counters.connects - 1),
      queuedMessages: this.count, queuedBytes: this.queuedBytes, lastError: this.lastError,
    };
  }

  get currentAddress(): PeerAddress {
    return this.address;
  }

  countSnapshot(ok: boolean): void {
    if (ok) this.counters.snapshotsSent++;
    else this.counters.snapshotsFailed++;
  }

  /** Counts a message the transport refused before it reached the queue (e.g. over the frame cap). */
  countDrop(): void {
    this.counters.messagesDropped++;
  }

  /** Queues a message of `bytes` encoded bytes; false if it was dropped. */
  send(message: Message, bytes: number): boolean {
    const environment = this.environment;
    if (this.state === "backoff" || this.state === "stopped") {
      this.counters.messagesDropped++;
      return false;
    }
    if (this.count >= environment.queueMessagesMax || this.queuedBytes + bytes > environment.queueBytesMax) {
      this.counters.messagesDropped++;
      if (!this.overflowing) {
        this.overflowing = true;
        environment.logger.warn({ peer: formatId(this.id), queuedMessages: this.count, queuedBytes: this.queuedBytes },
          "peer send queue full: dropping Raft messages until it drains");
        environment.onUnreachable(this.id);
      }
      return false;
    }
    const slot = (this.head + this.count) % this.ring.length;
    this.ring[slot] = message;
    this.sizes[slot] = bytes;
    this.count++;
    this.queuedBytes += bytes;
    this.scheduleFlush();
    return true;
  }

  /** Points the link at a new address: the current connection is dropped and the new one dialed at once. */
  updateAddress(address: PeerAddress, url: string): void {
    assert(this.state !== "stopped", "update of a stopped peer link");
    this.address = address;
    this.url = url;
    this.attempt = 0;
    this.teardown();
    this.connect();
  }

  stop(): void {
    if (this.state === "stopped") return;
    this.teardown();
    this.state = "stopped";
  }

  private teardown(): void {
    this.generation++;
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    const connection = this.connection;
    this.connection = null;
    this.writeInFlight = false;
    connection?.destroy();
    this.dropQueue();
  }

  private connect(): void {
    this.state = "connecting";
    const generation = ++this.generation;
    this.environment.dialMessages(this.id, this.address).then(
      (connection) => {
        if (generation !== this.generation) {
          connection.destroy();
          return;
        }
        this.onConnected(connection, generation);
      },
      (error: unknown) => {
        if (generation !== this.generation) return;
        this.counters.dialFailures++;
        this.onFailure(error instanceof Error ? error : new Error(String(error)), "cannot connect to peer");
      },
    );
  }

  private onConnected(connection: FramedSocket, generation: number): void {
    this.connection = connection;
    this.state = "connected";
    this.attempt = 0;
    this.counters.connects++;
    this.lastError = null;
    this.lastLoggedFailure = null;
    this.environment.logger.info({ peer: formatId(this.id), url: this.url, reconnects: Math.max(0, this.counters.connects - 1) },
      "connected to peer");
    // The listener writes nothing on this connection after Accept except a
    // refusal when it closes it; anything else is a broken peer.
    connection.setFrameHandler((type, payload) => {
      if (type === FrameType.Refuse) {
        const refusal = decodeRefusal(payload);
        connection.destroy(new HandshakeRefusedError(refusal.code, refusal.reason));
        return;
      }
      connection.destroy(new Error(`peer sent frame type ${type} on a messages connection`));
    });
    connection.setCloseHandler((error) => {
      if (generation !== this.generation) return;
      // A write callback of this connection may still be pending: make it stale.
      this.generation++;
      this.connection = null;
      this.writeInFlight = false;
      this.onFailure(error ?? new Error("connection closed by peer"), "lost connection to peer");
    });
    this.scheduleFlush();
  }

  private onFailure(error: Error, what: string): void {
    const environment = this.environment;
    this.lastError = error.message;
    this.dropQueue();
    this.state = "backoff";
    const refused = error instanceof HandshakeRefusedError || error instanceof HandshakeRejectedError;
    if (error.message !== this.lastLoggedFailure) {
      this.lastLoggedFailure = error.message;
      const fields = { peer: formatId(this.id), url: this.url, reason: error.message };
      if (refused) environment.logger.error(fields, `${what}: ${error.message}`);
      else environment.logger.warn(fields, `${what}: ${error.message}`);
    }
    if (refused) environment.onRefused(this.id, error);
    environment.onUnreachable(this.id);
    const delayMs = backoffDelayMs(environment.backoff, this.attempt, environment.random);
    this.attempt++;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      this.connect();
    }, delayMs);
  }

  private dropQueue(): void {
    for (let i = 0; i < this.count; i++) this.ring[(this.head + i) % this.ring.length] = null;
    this.counters.messagesDropped += this.count;
    this.head = 0;
    this.count = 0;
    this.queuedBytes = 0;
    this.overflowing = false;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.writeInFlight || this.state !== "connected") return;
    this.flushScheduled = true;
    // A microtask, not a direct write: everything the Ready loop sends in
    // this turn joins the same batch.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const connection = this.connection;
    if (connection === null || this.writeInFlight || this.count === 0) return;
    const ringLength = this.ring.length;
    let messages = 0;
    let total = 0;
    // At least one message per write, then as many as fit the batch budget.
    while (messages < this.count) {
      const bytes = FRAME_HEADER_BYTES + this.sizes[(this.head + messages) % ringLength];
      if (messages > 0 && total + bytes > this.environment.batchBytesMax) break;
      total += bytes;
      messages++;
    }
    const buffer = Buffer.allocUnsafe(total);
    let offset = 0;
    for (let i = 0; i < messages; i++) {
      const slot = this.head;
      const message = this.ring[slot];
      assert(message !== null, "queued slot is empty");
      offset = writeFrameHeader(buffer, offset, FrameType.Message, this.sizes[slot]);
      offset = encodeMessageInto(message, buffer, offset);
      this.ring[slot] = null;
      this.queuedBytes -= this.sizes[slot];
      this.head = (slot + 1) % ringLength;
    }
    assert(offset === total, "batch size disagrees with the encoded bytes");
    this.count -= messages;
    if (this.count === 0) this.overflowing = false;
    this.counters.writes++;
    this.counters.messagesSent += messages;
    this.counters.bytesSent += total;
    this.writeInFlight = true;
    const generation = this.generation;
    connection.write(buffer, (error) => {
      if (generation !== this.generation) return;
      this.writeInFlight = false;
      if (!error) this.flush();
    });
  }
}
