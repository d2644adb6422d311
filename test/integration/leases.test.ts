/**
 * Leases, locks and elections against a 3-member cluster of real `cairn
 * start` processes, through the etcd3 npm client and Debian's etcdctl (3.4):
 * keys go with their lease (and watchers see them go), a lease outlives a
 * leader change without expiring early, `etcdctl lock` excludes, and
 * `etcdctl elect` hands leadership over when the leader leaves.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { Client, EtcdClientError, type Lock } from "../../src/client/mod.js";
import { Cluster, SERVER_MAIN } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, pause, withLogs } from "./support.js";
import { ETCDCTL, etcdctl } from "./tools.js";

/** A long-running etcdctl (lock, elect) whose output is collected as it comes. */
class Background {
  output = "";
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(endpoints: readonly string[], args: readonly string[]) {
    this.child = spawn(ETCDCTL, [`--endpoints=${endpoints.join(",")}`, "--dial-timeout=3s", ...args], {
      env: { ...process.env, ETCDCTL_API: "3" }, stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => { this.output += chunk; });
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { this.output += chunk; });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  async waitFor(text: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.output.includes(text)) return true;
      await pause(50);
    }
    return this.output.includes(text);
  }

  stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    return this.exited.finally(() => clearTimeout(timer));
  }
}

const leaseIdOf = (output: string): string => {
  const match = /lease ([0-9a-f]+) granted with TTL\((\d+)s\)/.exec(output);
  if (!match) throw new Error(`no lease id in ${JSON.stringify(output)}`);
  return match[1];
};

describe("leases, locks and elections on a 3-member cluster", () => {
  let cluster: Cluster | undefined;
  let etcd: Etcd3;
  let client: Client;
  const background: Background[] = [];
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  const ctl = (args: string[]) => etcdctl(cluster!.endpoints(), args);

  beforeAll(async () => {
    cluster = await Cluster.start({ flags: ["--experimental-lease-checkpoint-interval", "1s"] });
    etcd = cluster.client();
    client = new Client({ endpoints: cluster.endpoints() });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await client?.close();
    await Promise.all(background.map((process) => process.stop("SIGKILL")));
    await cluster?.stop();
  });

  it("grants, lists, inspects, keeps alive and revokes a lease through etcdctl, with etcd's answers for a missing lease", run(async () => {
    const granted = await ctl(["lease", "grant", "60"]);
    expect(granted.code, granted.stderr).toBe(0);
    const id = leaseIdOf(granted.stdout);
    expect((await ctl(["put", "--lease", id, "svc/a", "1"])).code).toBe(0);
    expect((await ctl(["put", "--lease", id, "svc/b", "2"])).code).toBe(0);
    expect((await ctl(["lease", "list"])).stdout).toContain(id);
    const ttl = await ctl(["lease", "timetolive", id, "--keys"]);
    expect(ttl.stdout).toMatch(new RegExp(`lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[svc/a svc/b\\]\\)`));
    expect((await ctl(["lease", "keep-alive", "--once", id])).stdout).toContain(`lease ${id} keepalived with TTL(60)`);
    // A keep-alive sent to a follower reaches the leader (it is forwarded through Raft like a write).
    const { leader } = await cluster!.waitForLeader(10_000);
    const follower = cluster!.members.find((member) => member !== leader && member.running)!;
    await pause(2000);
    const onFollower = await etcdctl([follower.endpoint], ["lease", "keep-alive", "--once", id]);
    expect(onFollower.stdout).toContain(`lease ${id} keepalived with TTL(60)`);
    expect((await etcdctl([leader.endpoint], ["lease", "timetolive", id])).stdout).toMatch(/remaining\((59|60)s\)/);
    expect((await ctl(["lease", "revoke", id])).stdout).toContain(`lease ${id} revoked`);
    expect((await ctl(["get", "svc/", "--prefix"])).stdout).toBe("");
    const again = await ctl(["lease", "revoke", id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("etcdserver: requested lease not found");
    expect((await ctl(["lease", "timetolive", id])).stdout).toContain(`lease ${id} already expired`);
    const unknown = await ctl(["put", "--lease", "1234abcd", "k", "v"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("etcdserver: requested lease not found");
  }));

  it("keeps a lease's key while etcd3 sends keep-alives, then deletes it once they stop, and a watcher sees the delete", run(async () => {
    const lease = etcd.lease(2, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put("presence/worker-1").value("up");
    const watcher = await etcd.watch().key("presence/worker-1").create();
    const deletes: number[] = [];
    watcher.on("delete", () => deletes.push(Date.now()));
    try {
      // Three TTLs of keep-alives, through whichever members the client picks.
      for (let round = 0; round < 6; round++) {
        const answer = await lease.keepaliveOnce();
        expect(answer.TTL).toBe("2");
        await pause(1000);
      }
      expect(await etcd.get("presence/worker-1").string()).toBe("up");
      const stoppedAt = Date.now();
      while (deletes.length === 0 && Date.now() - stoppedAt < 10_000) await pause(50);
      expect(deletes).toHaveLength(1);
      // Not before the TTL, and not long after it.
      expect(deletes[0] - stoppedAt).toBeGreaterThanOrEqual(900);
      expect(deletes[0] - stoppedAt).toBeLessThan(5000);
      expect(await etcd.get("presence/worker-1").string()).toBeNull();
      const gone = await lease.keepaliveOnce().then((answer) => answer.TTL, (error: Error) => error.message);
      // The etcd3 client turns etcd's TTL 0 answer for a lease that is gone into an error.
      expect(String(gone)).toMatch(/is expired/);
      expect(id).toMatch(/^\d+$/);
    } finally {
      await watcher.cancel();
      lease.release();
    }
  }));

  it("does not expire a lease early when the leader dies, and still expires it afterwards", run(async () => {
    const c = cluster!;
    const granted = await ctl(["lease", "grant", "5"]);
    const id = leaseIdOf(granted.stdout);
    expect((await ctl(["put", "--lease", id, "ephemeral", "x"])).code).toBe(0);
    const grantedAt = Date.now();
    const { leader } = await c.waitForLeader(10_000);
    await c.kill(leader, "SIGKILL");
    await c.waitForLeader(15_000, { notName: leader.name });
    const survivors = c.members.filter((member) => member.running);
    const read = async () => (await etcdctl(c.endpoints(survivors), ["get", "ephemeral", "--print-value-only"])).stdout.trim();
    // Before its TTL is up the key is there, whichever member now leads.
    const beforeTtl = 5000 - 1200 - (Date.now() - grantedAt);
    if (beforeTtl > 0) await pause(beforeTtl);
    expect(Date.now() - grantedAt).toBeLessThan(5000);
    expect(await read()).toBe("x");
    // And the new leader does expire it: within the TTL plus one extension (and scheduling slack).
    let goneAt = 0;
    while (Date.now() - grantedAt < 20_000) {
      if ((await read()) === "") {
        goneAt = Date.now();
        break;
      }
      await pause(200);
    }
    expect(goneAt).toBeGreaterThan(0);
    expect(goneAt - grantedAt).toBeGreaterThanOrEqual(5000);
    c.restart(leader);
    await c.waitForLeader(20_000);
  }));

  it("continues a lease from its checkpointed remaining TTL after the whole cluster restarts, not from its full TTL", run(async () => {
    const c = cluster!;
    const id = leaseIdOf((await ctl(["lease", "grant", "20"])).stdout);
    expect((await ctl(["put", "--lease", id, "checkpointed", "x"])).code).toBe(0);
    // Checkpoints every second (the cluster's --experimental-lease-checkpoint-interval): about 10 s remain when it stops.
    await pause(10_000);
    await Promise.all(c.members.map((member) => c.kill(member, "SIGKILL")));
    for (const member of c.members) c.restart(member);
    await c.waitForLeader(30_000);
    const answer = await ctl(["lease", "timetolive", id]);
    const match = /remaining\((\d+)s\)/.exec(answer.stdout);
    expect(match, answer.stdout + answer.stderr).not.toBeNull();
    // Without checkpoints every member would start the lease again from 20 s (at least 14 s left here, restarts included).
    const remaining = Number(match![1]);
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(11);
    expect((await ctl(["get", "checkpointed", "--print-value-only"])).stdout.trim()).toBe("x");
    expect((await ctl(["lease", "revoke", id])).code).toBe(0);
  }));

  it("keeps a kept-alive lease through a leader change", run(async () => {
    const c = cluster!;
    // A client that retries on another member: the keep-alive stream may sit on the member about to be killed.
    const lease = c.client({ retries: true }).lease(3);
    const lost: Error[] = [];
    lease.on("lost", (error) => lost.push(error));
    await lease.put("kept").value("alive");
    const { leader } = await c.waitForLeader(10_000);
    await c.kill(leader, "SIGKILL");
    await c.waitForLeader(15_000, { notName: leader.name });
    await pause(7000);
    expect(lost).toEqual([]);
    const survivors = c.members.filter((member) => member.running);
    expect((await etcdctl(c.endpoints(survivors), ["get", "kept", "--print-value-only"])).stdout.trim()).toBe("alive");
    lease.release();
    expect((await etcdctl(c.endpoints(survivors), ["lease", "revoke", BigInt(await lease.grant()).toString(16)])).code).toBe(0);
    c.restart(leader);
    await c.waitForLeader(20_000);
  }));

  it("lets only one `etcdctl lock` holder run at a time", run(async () => {
    const c = cluster!;
    const directory = mkdtempSync(join(tmpdir(), "cairn-lock-"));
    const journal = join(directory, "journal");
    try {
      const holders = [0, 1, 2].map((holder) => {
        const process = new Background(c.endpoints(), [
          "lock", "--ttl=5", "jobs/lock", "--", "sh", "-c", `echo start-${holder} >> ${journal}; sleep 0.7; echo end-${holder} >> ${journal}`,
        ]);
        background.push(process);
        return process;
      });
      const codes = await Promise.all(holders.map((holder) => Promise.race([holder.exited, pause(30_000).then(() => "timeout")])));
      expect(codes, holders.map((holder) => holder.output).join("\n")).toEqual([0, 0, 0]);
      // Each holder's command ran whole while it held the lock: its end comes right after its start.
      const lines = readFileSync(journal, "utf8").trim().split("\n");
      expect(lines).toHaveLength(6);
      for (let at = 0; at < lines.length; at += 2) {
        expect(lines[at]).toMatch(/^start-\d$/);
        expect(lines[at + 1]).toBe(lines[at].replace("start", "end"));
      }
      // etcdctl revoked its session when the command ended: no lock keys are left.
      expect((await ctl(["get", "jobs/lock", "--prefix", "--keys-only"])).stdout.trim()).toBe("");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }));

  it("hands `etcdctl elect` leadership to the next candidate when the leader exits", run(async () => {
    const c = cluster!;
    const first = new Background(c.endpoints(), ["elect", "jobs/leader", "alpha"]);
    background.push(first);
    expect(await first.waitFor("alpha", 10_000)).toBe(true);
    const second = new Background(c.endpoints(), ["elect", "jobs/leader", "beta"]);
    background.push(second);
    const observer = new Background(c.endpoints(), ["elect", "--listen", "jobs/leader"]);
    background.push(observer);
    expect(await observer.waitFor("alpha", 10_000)).toBe(true);
    await pause(1000);
    expect(second.output).not.toContain("beta");
    await first.stop("SIGINT");
    expect(await second.waitFor("beta", 10_000)).toBe(true);
    expect(await observer.waitFor("beta", 10_000)).toBe(true);
    await second.stop("SIGINT");
    await observer.stop("SIGINT");
  }));

  it("keeps a lease alive with Cairn's client until the loop's AbortSignal stops it, then the lease's key goes", run(async () => {
    const granted = await client.lease.grant(2);
    await client.kv.put("client/presence", "here", { lease: granted.ID });
    const stop = new AbortController();
    let renewals = 0;
    const loop = client.lease.keepAlive(granted.ID, granted.TTL, { signal: stop.signal, onRenewed: () => renewals++ });
    await pause(4500);
    expect((await client.kv.get("client/presence")).kvs).toHaveLength(1);
    const ttl = await client.lease.timeToLive(granted.ID, { keys: true });
    expect(ttl.grantedTTL).toBe(2);
    expect(ttl.keys.map((key) => Buffer.from(key).toString())).toEqual(["client/presence"]);
    expect((await client.lease.leases()).leases.map((lease) => lease.ID)).toContain(granted.ID);
    stop.abort();
    await loop;
    expect(renewals).toBeGreaterThanOrEqual(4);
    const stoppedAt = Date.now();
    while ((await client.kv.get("client/presence")).kvs.length > 0 && Date.now() - stoppedAt < 10_000) await pause(100);
    expect((await client.kv.get("client/presence")).kvs).toHaveLength(0);
    expect((await client.lease.timeToLive(granted.ID)).TTL).toBe(-1);
    const missing = await client.lease.revoke(granted.ID).then(() => null, (error: unknown) => error);
    expect(missing).toBeInstanceOf(EtcdClientError);
    expect((missing as EtcdClientError).kind).toBe("leaseNotFound");
  }));

  it("hands Cairn's lock to one holder at a time with growing fencing tokens, and queues behind an etcdctl holder", run(async () => {
    const first = await client.lock("client/lock", { ttlSeconds: 5 });
    let second: Lock | undefined;
    const waiting = client.lock("client/lock", { ttlSeconds: 5 }).then((lock) => { second = lock; return lock; });
    await pause(800);
    expect(second).toBeUndefined();
    await first.unlock();
    const acquired = await waiting;
    expect(acquired.fencingToken).toBeGreaterThan(first.fencingToken);
    await acquired.unlock();

    // etcdctl and Cairn's client share the lock: etcdctl's holder blocks ours until it lets go.
    const holder = new Background(cluster!.endpoints(), ["lock", "--ttl=5", "client/shared"]);
    background.push(holder);
    expect(await holder.waitFor("client/shared/", 10_000)).toBe(true);
    let ours: Lock | undefined;
    const ourTurn = client.lock("client/shared", { ttlSeconds: 5 }).then((lock) => { ours = lock; return lock; });
    await pause(800);
    expect(ours).toBeUndefined();
    await holder.stop("SIGINT");
    const lock = await ourTurn;
    expect(Buffer.from(lock.key).toString()).toMatch(/^client\/shared\/[0-9a-f]+$/);
    await lock.unlock();
  }));

  it("runs an election with Cairn's client: the next candidate leads once the leader resigns, and observers see both", run(async () => {
    const election = client.election("client/election");
    const alpha = await election.campaign("alpha", { ttlSeconds: 5 });
    const stopObserving = new AbortController();
    const seen: string[] = [];
    const observing = (async () => {
      for await (const leader of election.observe({ signal: stopObserving.signal })) {
        seen.push(Buffer.from(leader.value).toString());
        if (seen.includes("beta")) return;
      }
    })();
    let betaLeads = false;
    const beta = election.campaign("beta", { ttlSeconds: 5 }).then((leadership) => { betaLeads = true; return leadership; });
    await pause(800);
    expect(betaLeads).toBe(false);
    expect(Buffer.from((await election.leader())!.value).toString()).toBe("alpha");
    await alpha.proclaim("alpha-2");
    const listener = new Background(cluster!.endpoints(), ["elect", "--listen", "client/election"]);
    background.push(listener);
    expect(await listener.waitFor("alpha-2", 10_000)).toBe(true);
    await alpha.resign();
    const leadership = await beta;
    expect(leadership.revision).toBeGreaterThan(alpha.revision);
    await Promise.race([observing, pause(10_000)]);
    expect(seen[seen.length - 1]).toBe("beta");
    expect(seen).toContain("alpha-2");
    expect(await listener.waitFor("beta", 10_000)).toBe(true);
    await listener.stop("SIGINT");
    stopObserving.abort();
    await leadership.resign();
    expect(await election.leader()).toBeNull();
  }));

  it("grants, lists, inspects and revokes through `cairn lease`", run(async () => {
    const cairn = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [SERVER_MAIN, "--endpoints", cluster!.endpoints().join(","), ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => { stdout += chunk; });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => { stderr += chunk; });
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
    const granted = await cairn(["lease", "grant", "30"]);
    expect(granted.code, granted.stderr).toBe(0);
    const id = leaseIdOf(granted.stdout);
    expect((await cairn(["lease", "list"])).stdout).toContain(`${id}\n`);
    expect((await cairn(["lease", "keep-alive", "--once", id])).stdout).toBe(`lease ${id} keepalived with TTL(30)\n`);
    expect((await cairn(["lease", "timetolive", id])).stdout).toMatch(new RegExp(`lease ${id} granted with TTL\\(30s\\), remaining\\((29|30)s\\)`));
    expect((await cairn(["lease", "revoke", id])).stdout).toBe(`lease ${id} revoked\n`);
    const again = await cairn(["lease", "revoke", id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("etcdserver: requested lease not found");
    const bad = await cairn(["lease", "revoke", "not-hex"]);
    expect(bad.code).toBe(2);
    expect((await cairn(["lease", "grant", "0"])).code).toBe(2);
  }));
});
