/**
 * --force-new-cluster on real processes: two of three members are lost for
 * good (SIGKILL, never restarted); the survivor, restarted with the flag,
 * becomes a one-member cluster with every committed write, takes writes
 * again, and grows back when a new member is added.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, SERVER_MAIN, freePort } from "./cluster.js";
import { CATCH_UP_TIMEOUT_MS, CLUSTER_START_TIMEOUT_MS, pause, withLogs } from "./support.js";
import { etcdctl } from "./tools.js";

const KEYS = 30;

describe("--force-new-cluster", () => {
  let cluster: Cluster | undefined;
  let joiner: ChildProcess | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    if (joiner && joiner.exitCode === null && joiner.signalCode === null) joiner.kill("SIGKILL");
    await cluster?.stop();
  });

  it("recovers a lone survivor with every committed write, serves writes, and takes a new member", run(async () => {
    const endpoints = cluster!.endpoints();
    for (let i = 0; i < KEYS; i++) expect((await etcdctl(endpoints, ["put", `key${i}`, `value${i}`])).code).toBe(0);
    const { leader } = await cluster!.waitForLeader(10_000);
    // The survivor is a follower, so the recovery cannot lean on having led.
    const survivor = cluster!.members.find((member) => member !== leader)!;
    for (const member of cluster!.members) if (member !== survivor) await cluster!.kill(member, "SIGKILL");
    await cluster!.kill(survivor, "SIGKILL");

    cluster!.restart(survivor, ["--force-new-cluster"]);
    const recovered = await cluster!.waitForLeader(30_000);
    expect(recovered.leader.name).toBe(survivor.name);
    expect(survivor.logs.some((line) => /--force-new-cluster: kept the log up to its commit index \d+, discarded \d+ uncommitted entries, and committed the removal of 2 other members/.test(line.message))).toBe(true);

    const own = [survivor.endpoint];
    const list = await etcdctl(own, ["member", "list"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trim().split("\n")).toHaveLength(1);
    expect(list.stdout).toContain(`, started, ${survivor.name}, ${survivor.peerUrl}, `);
    const all = await etcdctl(own, ["get", "key", "--prefix", "--print-value-only"]);
    expect(all.stdout.trim().split("\n").sort()).toEqual(Array.from({ length: KEYS }, (_, i) => `value${i}`).sort());
    const written = await etcdctl(own, ["put", "after-recovery", "yes"]);
    expect(written.code, written.stderr).toBe(0);

    // Grows back: a new member added (as a learner, then promoted) joins and catches up.
    const clientPort = await freePort();
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const added = await etcdctl(own, ["member", "add", "n4", `--peer-urls=${peerUrl}`, "--learner"]);
    expect(added.code, added.stderr).toBe(0);
    const id = /Member\s+([0-9a-f]+) added/.exec(added.stdout)?.[1];
    // etcdctl prints ids with %16x: a smaller id comes padded with spaces.
    expect(id, added.stdout).toMatch(/^[0-9a-f]+$/);
    joiner = spawn(process.execPath, [
      SERVER_MAIN, "start", "--name", "n4", "--data-dir", join(cluster!.root, "n4"),
      "--listen-client-urls", `http://127.0.0.1:${clientPort}`, "--advertise-client-urls", `http://127.0.0.1:${clientPort}`,
      "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `${survivor.name}=${survivor.peerUrl},n4=${peerUrl}`, "--initial-cluster-state", "existing",
      "--heartbeat-interval", "50", "--election-timeout", "500",
    ], { stdio: "ignore" });
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    let seen = "";
    while (Date.now() < deadline && seen !== "yes") {
      seen = (await etcdctl([`127.0.0.1:${clientPort}`], ["get", "after-recovery", "--consistency=s", "--print-value-only"])).stdout.trim();
      if (seen !== "yes") await pause(200);
    }
    expect(seen).toBe("yes");
    const promoted = await etcdctl(own, ["member", "promote", id!]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect((await etcdctl(own, ["put", "two-voters", "yes"])).code).toBe(0);
    const members = await etcdctl(own, ["member", "list"]);
    expect(members.stdout.trim().split("\n")).toHaveLength(2);
  }), 180_000);
});
