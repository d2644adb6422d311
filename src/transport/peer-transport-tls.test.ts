import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { clusterId, type NodeId } from "../lib/ids.js";
import { MessageType, type Message } from "../raft/types.js";
import { TransportConfigError } from "./errors.js";
import { PeerTransport } from "./peer-transport.js";
import { makeCertificates, makeMessage, NODE_1, NODE_2, RecordingLogger, waitFor, type TestCertificates } from "./test-helpers.js";
import type { PeerTlsConfig } from "./tls-config.js";

const CLUSTER = clusterId(0x7e57);
let certificates: TestCertificates;
const open: PeerTransport[] = [];

beforeAll(() => {
  certificates = makeCertificates();
});
afterAll(() => certificates.remove());
afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

interface TlsNode {
  transport: PeerTransport;
  logger: RecordingLogger;
  inbox: Message[];
}

async function startTlsNode(id: NodeId, tls: PeerTlsConfig | undefined, scheme = "https"): Promise<TlsNode> {
  const logger = new RecordingLogger();
  const inbox: Message[] = [];
  const transport = await PeerTransport.listen({
    nodeId: id, clusterId: CLUSTER, listenUrl: `${scheme}://127.0.0.1:0`, tls, logger,
    onMessage: (message) => inbox.push(message),
    onSnapshot: async (_message, data) => {
      for await (const _chunk of data) { /* discard */ }
    },
    tuning: { backoffMsMin: 20, backoffMsMax: 200, dialTimeoutMs: 2_000 },
  });
  open.push(transport);
  return { transport, logger, inbox };
}

function serverTls(clientCertAuth: boolean): PeerTlsConfig {
  return { certFile: certificates.certFile, keyFile: certificates.keyFile, trustedCaFile: certificates.caFile, clientCertAuth };
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return makeMessage({ type: MessageType.Heartbeat, from, to, term: 1, commit });
}

describe("peer transport over TLS", () => {
  it("exchanges messages over https:// peer URLs", async () => {
    const [a, b] = await Promise.all([startTlsNode(NODE_1, serverTls(false)), startTlsNode(NODE_2, serverTls(false))]);
    expect(a.transport.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    a.transport.addPeer(NODE_2, b.transport.url);
    b.transport.addPeer(NODE_1, a.transport.url);
    for (let i = 0; i < 100; i++) {
      a.transport.send(heartbeat(NODE_1, NODE_2, i));
      b.transport.send(heartbeat(NODE_2, NODE_1, i));
    }
    await waitFor(() => a.inbox.length === 100 && b.inbox.length === 100, "messages both ways over TLS");
    expect(b.inbox.map((message) => message.commit)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("with client certificate auth, accepts a peer presenting a certificate from the trusted CA", async () => {
    const [a, b] = await Promise.all([startTlsNode(NODE_1, serverTls(true)), startTlsNode(NODE_2, serverTls(true))]);
    a.transport.addPeer(NODE_2, b.transport.url);
    a.transport.send(heartbeat(NODE_1, NODE_2, 1));
    await waitFor(() => a.transport.peerStats(NODE_2)?.state === "connected", "mutual TLS connection");
    a.transport.send(heartbeat(NODE_1, NODE_2, 2));
    await waitFor(() => b.inbox.length >= 1, "message over mutual TLS");
  });

  it("with client certificate auth, refuses a peer without a certificate and says why on both sides", async () => {
    const b = await startTlsNode(NODE_2, serverTls(true));
    const a = await startTlsNode(NODE_1, { trustedCaFile: certificates.caFile }, "http");
    a.transport.addPeer(NODE_2, b.transport.url);
    await waitFor(() => (a.transport.peerStats(NODE_2)?.dialFailures ?? 0) >= 1, "the refused dial");
    expect(a.transport.peerStats(NODE_2)?.connects).toBe(0);
    expect(a.transport.peerStats(NODE_2)?.lastError).toMatch(/certificate/i);
    expect(a.logger.find(/cannot connect to peer.*certificate/i, "warn")).toBeDefined();
    await waitFor(() => b.logger.find(/TLS handshake failed.*certificate/i, "warn") !== undefined, "the listener's log line");
    expect(b.inbox).toHaveLength(0);
  });

  it("with client certificate auth, refuses a peer whose certificate comes from another CA", async () => {
    const b = await startTlsNode(NODE_2, serverTls(true));
    const a = await startTlsNode(NODE_1, {
      certFile: certificates.strangerCertFile, keyFile: certificates.strangerKeyFile, trustedCaFile: certificates.caFile,
    }, "http");
    a.transport.addPeer(NODE_2, b.transport.url);
    await waitFor(() => b.logger.find(/TLS handshake failed/, "warn") !== undefined, "the listener refused the stranger");
    expect(a.transport.peerStats(NODE_2)?.connects).toBe(0);
  });

  it("refuses to dial a server whose certificate is not from the trusted CA", async () => {
    const b = await startTlsNode(NODE_2, { certFile: certificates.strangerCertFile, keyFile: certificates.strangerKeyFile });
    const a = await startTlsNode(NODE_1, serverTls(false));
    a.transport.addPeer(NODE_2, b.transport.url);
    await waitFor(() => a.transport.peerStats(NODE_2)?.lastError !== null && (a.transport.peerStats(NODE_2)?.dialFailures ?? 0) >= 1, "the failed dial");
    expect(a.transport.peerStats(NODE_2)?.lastError).toMatch(/certificate/i);
  });

  it("refuses configurations that cannot work", async () => {
    await expect(startTlsNode(NODE_1, undefined)).rejects.toThrow(TransportConfigError);
    await expect(startTlsNode(NODE_1, { trustedCaFile: certificates.caFile })).rejects.toThrow(/peer-cert-file/);
    await expect(startTlsNode(NODE_1, { certFile: certificates.certFile, keyFile: certificates.keyFile, clientCertAuth: true })).rejects.toThrow(/trusted-ca-file/);
    await expect(startTlsNode(NODE_1, { certFile: "/nonexistent.crt", keyFile: certificates.keyFile })).rejects.toThrow(/cannot read/);
    const plain = await startTlsNode(NODE_1, undefined, "http");
    expect(() => plain.transport.addPeer(NODE_2, "https://127.0.0.1:2380")).toThrow(/no peer TLS/);
  });
});
