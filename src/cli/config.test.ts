import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, readConfigFile, readEnvironment, resolveConfig } from "./config.js";

const folder = mkdtempSync(join(tmpdir(), "cairn-config-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const threeNodes = {
  "name": "n1",
  "listen-peer-urls": "http://127.0.0.1:12380",
  "initial-cluster": "n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380",
};

describe("node configuration", () => {
  it("uses etcd's defaults when nothing is given", () => {
    const config = resolveConfig({});
    expect(config.name).toBe("default");
    expect(config.dataDir).toBe("default.cairn");
    expect(config.listenClientUrls.map(String)).toEqual(["http://127.0.0.1:2379/"]);
    expect(config.heartbeatIntervalMs).toBe(100);
    expect(config.electionTimeoutMs).toBe(1000);
    expect(config.maxTxnOps).toBe(128);
    expect(config.initialCluster.get("default")?.map(String)).toEqual(["http://127.0.0.1:2380/"]);
  });

  it("reads the watch flags, and refuses a progress interval without a unit or a buffer bound of zero", () => {
    expect(resolveConfig({})).toMatchObject({ watchProgressNotifyIntervalMs: 600_000, watchBufferedEventsMax: 4096 });
    expect(resolveConfig({ flags: { "experimental-watch-progress-notify-interval": "250ms", "watch-buffered-events-max": "64" } }))
      .toMatchObject({ watchProgressNotifyIntervalMs: 250, watchBufferedEventsMax: 64 });
    expect(() => resolveConfig({ flags: { "experimental-watch-progress-notify-interval": "10" } })).toThrow(/is not a duration/);
    expect(() => resolveConfig({ flags: { "experimental-watch-progress-notify-interval": "1ms" } })).toThrow(/below the minimum/);
    expect(() => resolveConfig({ flags: { "watch-buffered-events-max": "0" } })).toThrow(ConfigError);
  });

  it("layers file < environment < flags", () => {
    const path = join(folder, "layers.yaml");
    writeFileSync(path, "name: n1\nheartbeat-interval: 50\nelection-timeout: 500\nsnapshot-count: 7\nlisten-peer-urls: http://127.0.0.1:12380\n");
    const config = resolveConfig({
      file: readConfigFile(path),
      environment: readEnvironment({ CAIRN_ELECTION_TIMEOUT: "600", CAIRN_SNAPSHOT_COUNT: "8" }),
      flags: { "snapshot-count": "9" },
    });
    expect(config.heartbeatIntervalMs).toBe(50);
    expect(config.electionTimeoutMs).toBe(600);
    expect(config.snapshotCount).toBe(9);
  });

  it("reads etcd's nested transport-security sections from a config file", () => {
    const path = join(folder, "tls.yaml");
    writeFileSync(path, "client-transport-security:\n  cert-file: /c.pem\n  key-file: /k.pem\n  trusted-ca-file: /ca.pem\n  client-cert-auth: true\n");
    const config = resolveConfig({ file: readConfigFile(path) });
    expect(config.clientTls).toEqual({ certFile: "/c.pem", keyFile: "/k.pem", trustedCaFile: "/ca.pem", clientCertAuth: true });
  });

  it("parses a three-member initial cluster and checks this member is in it", () => {
    const config = resolveConfig({ flags: threeNodes });
    expect([...config.initialCluster.keys()]).toEqual(["n1", "n2", "n3"]);
    expect(() => resolveConfig({ flags: { ...threeNodes, name: "n4" } })).toThrow(/"n4" is not in it/);
  });

  it.each([
    [{ "heartbeat-interval": "abc" }, /--heartbeat-interval: "abc" is not an integer/],
    [{ "election-timeout": "200" }, /--election-timeout: 200 ms must be at least 5 times/],
    [{ "listen-client-urls": "127.0.0.1:2379" }, /--listen-client-urls: "127.0.0.1:2379" is not a URL/],
    [{ "listen-client-urls": "tcp://127.0.0.1:2379" }, /must use http:\/\//],
    [{ "listen-client-urls": "https://127.0.0.1:2379" }, /needs --cert-file/],
    [{ "initial-cluster-state": "old" }, /must be one of new, existing/],
    [{ "initial-cluster": "n1" }, /"n1" is not name=url/],
    [{ "client-cert-auth": "true" }, /needs --trusted-ca-file/],
    [{ "cert-file": "/c.pem" }, /must be given together/],
    [{ "auto-compaction-retention": "forever" }, /not a duration/],
    [{ "name": "has space" }, /--name/],
  ])("refuses %o with a message naming the field", (flags, message) => {
    expect(() => resolveConfig({ flags })).toThrow(ConfigError);
    expect(() => resolveConfig({ flags })).toThrow(message);
  });

  it("converts periodic retention to milliseconds and revision retention to a count", () => {
    expect(resolveConfig({ flags: { "auto-compaction-retention": "1h" } }).autoCompactionRetention).toBe(3_600_000);
    expect(resolveConfig({ flags: { "auto-compaction-retention": "2" } }).autoCompactionRetention).toBe(7_200_000);
    expect(resolveConfig({ flags: { "auto-compaction-mode": "revision", "auto-compaction-retention": "1000" } }).autoCompactionRetention).toBe(1000);
  });

  it("rejects unknown keys and non-mappings in a config file", () => {
    const unknown = join(folder, "unknown.yaml");
    writeFileSync(unknown, "nmae: typo\n");
    expect(() => readConfigFile(unknown)).toThrow(/unknown option "nmae"/);
    const list = join(folder, "list.yaml");
    writeFileSync(list, "- a\n- b\n");
    expect(() => readConfigFile(list)).toThrow(/expected a mapping/);
    expect(() => readConfigFile(join(folder, "missing.yaml"))).toThrow(/cannot read config file/);
  });
});
