import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcStatus } from "../api/mod.js";
import { Client } from "./client.js";
import { EtcdClientError, TransportError } from "./errors.js";
import { FakeCluster } from "./testing/fake-cluster.js";

/** A self-signed certificate for 127.0.0.1, made with the openssl command. */
function selfSignedCertificate(directory: string): { cert: Buffer; key: Buffer } {
  const certPath = join(directory, "cert.pem");
  const keyPath = join(directory, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=cairn-test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyPath, "-out", certPath,
  ], { stdio: "ignore" });
  return { cert: readFileSync(certPath), key: readFileSync(keyPath) };
}

describe("the client over TLS (https:// endpoints)", () => {
  let directory: string;
  let certificate: { cert: Buffer; key: Buffer };
  let cluster: FakeCluster;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), "cairn-client-tls-"));
    certificate = selfSignedCertificate(directory);
    cluster = await FakeCluster.start(1, { secure: certificate });
  });

  afterAll(async () => {
    await cluster.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it("talks to a TLS server whose certificate it trusts", async () => {
    const client = new Client({ endpoints: `https://${cluster.endpoints[0]}`, tls: { ca: certificate.cert } });
    try {
      await client.kv.put("secure", "yes");
      expect(Buffer.from((await client.kv.get("secure")).kvs[0].value).toString()).toBe("yes");
    } finally {
      await client.close();
    }
  });

  it("refuses a server certificate it does not trust, before sending anything", async () => {
    const client = new Client({ endpoints: `https://${cluster.endpoints[0]}`, dialTimeoutMs: 2000 });
    try {
      const failure = await client.kv.put("secure", "no").catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(EtcdClientError);
      expect(failure).toMatchObject({ code: GrpcStatus.unavailable });
      expect((failure as Error).cause).toBeInstanceOf(TransportError);
      expect(((failure as Error).cause as TransportError).requestSent).toBe(false);
      expect(cluster.received("put")).toBe(1);
    } finally {
      await client.close();
    }
  });
});
