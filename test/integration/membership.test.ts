/**
 * Membership with real processes and etcdctl: a fourth member added as a
 * learner joins with --initial-cluster-state existing, catches up by snapshot
 * (the log was compacted first), is promoted, then removed — and exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, SERVER_MAIN, freePort } from "./cluster.js";
import { CATCH_UP_TIMEOUT_MS, CLUSTER_START_TIMEOUT_MS, pause, withLogs } from "./support.js";
import { etcdctl } from "./tools.js";

const KEYS = 40;

describe("membership changes on a running cluster", () => {
  let cluster: Cluster | undefined;
  let joiner: ChildProcess | undefined;
  const joinerLog: string[] = [];
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, async () => {
    try {
      await body();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- the joining member's last log lines:\n${joinerLog.slice(-20).join("")}`, { cause: error });
    }
  });

  beforeAll(async () => {
    // A small snapshot count so the log is compacted before the new member joins: it must catch up by snapshot.
    cluster = await Cluster.start({ flags: ["--snapshot-count", "10"] });
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    if (joiner && joiner.exitCode === null && joiner.signalCode === null) joiner.kill("SIGKILL");
    await cluster?.stop();
  });

  it("adds a learner that joins, catches up by snapshot, is promoted, and exits once removed", run(async () => {
    const endpoints = cluster!.endpoints();
    for (let i = 0; i < KEYS; i++) expect((await etcdctl(endpoints, ["put", `key${i}`, `value${i}`])).code).toBe(0);

    const clientPort = await freePort();
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const added = await etcdctl(endpoints, ["member", "add", "n4", `--peer-urls=${peerUrl}`, "--learner"]);
    expect(added.code, added.stderr).toBe(0);
    const id = /Member\s+([0-9a-f]+) added/.exec(added.stdout)?.[1];
    // etcdctl prints ids with %16x: a smaller id comes padded with spaces.
    expect(id, added.stdout).toMatch(/^[0-9a-f]+$/);
    expect(id).toBeDefined();

    const initialCluster = [...cluster!.members.map((member) => `${member.name}=${member.peerUrl}`), `n4=${peerUrl}`].join(",");
    joiner = spawn(process.execPath, [
      SERVER_MAIN, "start", "--name", "n4", "--data-dir", join(cluster!.root, "n4"),
      "--listen-client-urls", `http://127.0.0.1:${clientPort}`, "--advertise-client-urls", `http://127.0.0.1:${clientPort}`,
      "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", initialCluster, "--initial-cluster-state", "existing",
      "--heartbeat-interval", "50", "--election-timeout", "500",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    joiner.stderr?.setEncoding("utf8").on("data", (chunk: string) => joinerLog.push(chunk));
    const exited = new Promise<number | null>((resolve) => joiner!.on("exit", (code) => resolve(code)));

    // The learner serves serializable reads of what was written before it joined.
    const learnerEndpoint = [`127.0.0.1:${clientPort}`];
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    let seen = "";
    while (Date.now() < deadline) {
      seen = (await etcdctl(learnerEndpoint, ["get", `key${KEYS - 1}`, "--consistency=s", "--print-value-only"])).stdout.trim();
      if (seen === `value${KEYS - 1}`) break;
      await pause(200);
    }
    expect(seen).toBe(`value${KEYS - 1}`);
    expect(joinerLog.join("")).toMatch(/snapshot from [0-9a-f]+ at \d+: installed/);

    const promoted = await etcdctl(endpoints, ["member", "promote", id!]);
    expect(promoted.code, promoted.stderr).toBe(0);
    const list = await etcdctl(endpoints, ["member", "list"]);
    const row = list.stdout.split("\n").find((line) => line.startsWith(id!));
    expect(row).toMatch(/, started, n4, .*, false$/);

    const removed = await etcdctl(endpoints, ["member", "remove", id!]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await Promise.race([exited, pause(20_000).then(() => "still running")])).toBe(0);
    const after = await etcdctl(endpoints, ["member", "list"]);
    expect(after.stdout).not.toContain(id!);
    expect(after.stdout.trim().split("\n")).toHaveLength(3);
  }), 180_000);
});
