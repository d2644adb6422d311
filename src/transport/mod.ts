/**
 * The peer transport: Raft messages between the nodes of a cluster over TCP
 * or TLS, with a checked handshake, bounded queues, batching, reconnects and
 * snapshots on connections of their own.
 *
 * Wiring it to a Raft node (the server layer's job):
 *   onMessage(m)       → route by m.group, then raft.step(m)
 *   onUnreachable(id)  → raft.reportUnreachable(id) for every group
 *   Ready.messages     → transport.send(m) for each (Snap messages instead go
 *                        through sendSnapshot(m, chunks), then
 *                        raft.reportSnapshot(m.to, ok) with the outcome)
 *   onSnapshot(m, data)→ install the image from data, then step(m); resolve
 *                        only once it is durable, the sender is told "ok".
 */
export {
  PeerTransport, DEFAULT_TUNING, type PeerTransportOptions, type TransportTuning, type TransportStats,
  type SnapshotSendOptionsPublic,
} from "./peer-transport.js";
export type { PeerStats, PeerState } from "./peer-link.js";
export type { PeerTlsConfig } from "./tls-config.js";
export { loadTls } from "./tls-config.js";
export type { TransportLogger } from "./logger.js";
export { silentLogger } from "./logger.js";
export { parsePeerUrl, formatPeerUrl, type PeerAddress } from "./peer-url.js";
export { encodeMessage, encodeMessageInto, encodedMessageBytes, decodeMessage, isWireMessageType } from "./codec.js";
export { FrameDecoder, FrameType, encodeFrame, FRAME_HEADER_BYTES } from "./frame.js";
export { PROTOCOL_VERSION, RefuseCode } from "./handshake.js";
export * from "./errors.js";
export { discoverCluster } from "./discovery.js";
