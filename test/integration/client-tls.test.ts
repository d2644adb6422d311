/**
 * TLS on the client port of a 3-member cluster of real `cairn start`
 * processes: each member serves plaintext and TLS side by side (the scheme of
 * each --listen-client-urls entry decides, as in etcd), with
 * --client-cert-auth on the TLS listener. Certificates are made by the test
 * with openssl. The etcd3 client's usual patterns (put, get, txn, lease,
 * watch), etcdctl and Cairn's own client run over TLS; a client without a
 * certificate, or with one from another CA, is refused.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { Client } from "../../src/client/mod.js";
import { makeCertificates, type TestCertificates } from "../../src/transport/test-helpers.js";
import { Cluster, freePort } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, pause, withLogs } from "./support.js";
import { etcdctl } from "./tools.js";

describe("TLS on the client port", () => {
  let cluster: Cluster | undefined;
  let certificates: TestCertificates;
  const tlsPorts = new Map<string, number>();
  const clients: Etcd3[] = [];
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  const tlsEndpoints = () => [...tlsPorts.values()].map((port) => `127.0.0.1:${port}`);

  function etcd3(options: { cert?: boolean; stranger?: boolean } = {}): Etcd3 {
    const client = new Etcd3({
      hosts: tlsEndpoints().map((endpoint) => `https://${endpoint}`),
      credentials: {
        rootCertificate: readFileSync(certificates.caFile),
        ...(options.cert === false ? {} : {
          certChain: readFileSync(options.stranger ? certificates.strangerCertFile : certificates.certFile),
          privateKey: readFileSync(options.stranger ? certificates.strangerKeyFile : certificates.keyFile),
        }),
      },
      dialTimeout: 3000,
      faultHandling: { host: () => noop, global: noop },
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    certificates = makeCertificates();
    for (const name of ["n1", "n2", "n3"]) tlsPorts.set(name, await freePort());
    cluster = await Cluster.start({
      flags: ["--cert-file", certificates.certFile, "--key-file", certificates.keyFile, "--trusted-ca-file", certificates.caFile, "--client-cert-auth", "true"],
      extraListenClientUrls: (name) => [`https://127.0.0.1:${tlsPorts.get(name)}`],
    });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
    certificates?.remove();
  });

  it("serves the etcd3 client's put, get, txn, lease and watch over TLS with a client certificate", run(async () => {
    const etcd = etcd3();
    await etcd.put("tls/greeting").value("hello");
    expect(await etcd.get("tls/greeting").string()).toBe("hello");
    const swapped = await etcd.if("tls/greeting", "Value", "==", "hello").then(etcd.put("tls/greeting").value("hi")).commit();
    expect(swapped.succeeded).toBe(true);
    const watcher = await etcd.watch().prefix("tls/").create();
    const seen: string[] = [];
    watcher.on("put", (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
    watcher.on("delete", (kv) => seen.push(`delete ${kv.key.toString()}`));
    const lease = etcd.lease(2, { autoKeepAlive: false });
    await lease.put("tls/session").value("open");
    expect((await lease.keepaliveOnce()).TTL).toBe("2");
    await lease.revoke();
    const deadline = Date.now() + 10_000;
    while (seen.length < 2 && Date.now() < deadline) await pause(50);
    expect(seen).toEqual(["put tls/session=open", "delete tls/session"]);
    await watcher.cancel();
    expect(await etcd.getAll().prefix("tls/").strings()).toEqual({ "tls/greeting": "hi" });
  }));

  it("refuses a TLS client without a certificate, or with one from another CA, before any request is served", run(async () => {
    for (const client of [etcd3({ cert: false }), etcd3({ stranger: true })]) {
      const outcome = await client.put("tls/intruder").value("x").then(() => "accepted", (error: Error) => error.message);
      expect(outcome).not.toBe("accepted");
    }
    expect(await etcd3().get("tls/intruder").string()).toBeNull();
  }));

  it("serves etcdctl and Cairn's client over TLS while the plaintext listener keeps working", run(async () => {
    const secure = await etcdctl(tlsEndpoints(), ["--cacert", certificates.caFile, "--cert", certificates.certFile, "--key", certificates.keyFile, "put", "tls/ctl", "1"]);
    expect(secure.code, secure.stderr).toBe(0);
    const plain = await etcdctl(cluster!.endpoints(), ["get", "tls/ctl", "--print-value-only"]);
    expect(plain.stdout.trim()).toBe("1");
    // Trusting the server is not enough: the member wants a client certificate.
    const anonymous = await etcdctl(tlsEndpoints(), ["--cacert", certificates.caFile, "--command-timeout=2s", "get", "tls/ctl"]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stdout).toBe("");
    const client = new Client({
      endpoints: tlsEndpoints().map((endpoint) => `https://${endpoint}`),
      tls: { ca: readFileSync(certificates.caFile), cert: readFileSync(certificates.certFile), key: readFileSync(certificates.keyFile) },
    });
    try {
      expect(Buffer.from((await client.kv.get("tls/ctl")).kvs[0].value).toString()).toBe("1");
      const lock = await client.lock("tls/lock", { ttlSeconds: 5 });
      expect(lock.fencingToken).toBeGreaterThan(0);
      await lock.unlock();
    } finally {
      await client.close();
    }
  }));
});
