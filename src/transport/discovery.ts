/**
 * A joining member's question to a running cluster: who are you? It dials a
 * peer URL with a Discover hello and returns the single Discovery frame's
 * payload (the server decides its contents: cluster id and members).
 */
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { FrameDecoder, FrameType, encodeFrame } from "./frame.js";
import { ConnectionKind, PROTOCOL_VERSION, decodeRefusal, encodeHello } from "./handshake.js";
import { parsePeerUrl } from "./peer-url.js";
import { HandshakeRefusedError, TransportTimeoutError, ConnectionLostError, ProtocolViolationError } from "./errors.js";
import { loadPeerTls, type PeerTlsConfig } from "./tls-config.js";
import type { ClusterId, NodeId } from "../lib/ids.js";

const DISCOVERY_BYTES_MAX = 1024 * 1024;

export async function discoverCluster(url: string, options: { tls?: PeerTlsConfig; timeoutMs?: number } = {}): Promise<Uint8Array> {
  const address = parsePeerUrl(url);
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise<Uint8Array>((resolve, reject) => {
    let socket: Socket;
    let settled = false;
    const finish = (error: Error | null, payload?: Uint8Array) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(payload!);
    };
    const timer = setTimeout(() => finish(new TransportTimeoutError(`no discovery answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    const decoder = new FrameDecoder(DISCOVERY_BYTES_MAX, (type, payload) => {
      if (type === FrameType.Discovery) finish(null, new Uint8Array(payload));
      else if (type === FrameType.Refuse) {
        const refusal = decodeRefusal(payload);
        finish(new HandshakeRefusedError(refusal.code, refusal.reason));
      } else finish(new ProtocolViolationError(`expected a discovery answer from ${url}, got frame type ${type}`));
    });
    const hello = encodeFrame(FrameType.Hello, encodeHello({
      version: PROTOCOL_VERSION, kind: ConnectionKind.Discover, clusterId: 0n as ClusterId, sender: 0n as NodeId, receiver: 0n as NodeId,
    }));
    if (address.secure) {
      const tls = options.tls ? loadPeerTls(options.tls) : null;
      socket = connectTls({ ...(tls?.client ?? {}), host: address.host, port: address.port }, () => socket.write(hello));
    } else {
      socket = connectTcp({ host: address.host, port: address.port }, () => socket.write(hello));
    }
    socket.on("data", (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (error) {
        finish(error as Error);
      }
    });
    socket.on("error", (error) => finish(new ConnectionLostError(`discovery at ${url}: ${error.message}`, { cause: error })));
    socket.on("close", () => finish(new ConnectionLostError(`discovery at ${url}: connection closed before an answer`)));
  });
}
