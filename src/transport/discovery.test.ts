import { afterEach, describe, expect, it } from "vitest";
import { clusterId, nodeId } from "../lib/ids.js";
import { discoverCluster } from "./discovery.js";
import { HandshakeRefusedError, ConnectionLostError } from "./errors.js";
import { PeerTransport } from "./peer-transport.js";
import { silentLogger } from "./logger.js";

const open: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

async function listen(onDiscover?: () => Uint8Array): Promise<PeerTransport> {
  const transport = await PeerTransport.listen({
    nodeId: nodeId(1), clusterId: clusterId(77), listenUrl: "http://127.0.0.1:0", logger: silentLogger,
    onMessage: () => {}, onSnapshot: async () => {}, onDiscover, tuning: { closeGraceMs: 200 },
  });
  open.push(transport);
  return transport;
}

describe("discovery by a joining member", () => {
  it("returns what the listener says about its cluster, without knowing the cluster id", async () => {
    const transport = await listen(() => new TextEncoder().encode('{"cluster":"4d"}'));
    const answer = await discoverCluster(transport.url);
    expect(new TextDecoder().decode(answer)).toBe('{"cluster":"4d"}');
  });

  it("is refused with a reason by a node that does not answer discovery", async () => {
    const transport = await listen();
    await expect(discoverCluster(transport.url)).rejects.toBeInstanceOf(HandshakeRefusedError);
  });

  it("fails clearly when nothing listens at the URL", async () => {
    const transport = await listen();
    const url = transport.url;
    await transport.close();
    await expect(discoverCluster(url, { timeoutMs: 2000 })).rejects.toBeInstanceOf(ConnectionLostError);
  });

  it("leaves the listener serving ordinary peers afterwards", async () => {
    const transport = await listen(() => new Uint8Array([1]));
    await discoverCluster(transport.url);
    await discoverCluster(transport.url);
    expect(transport.stats().inboundProtocolErrors).toBe(0);
  });
});
