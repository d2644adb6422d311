/**
 * Backups with `cairn snapshot save` and `cairn snapshot restore`: a snapshot
 * taken from a running 3-member cluster is restored into three new data
 * directories, which start as a new cluster (new cluster and member ids)
 * holding the same keys at the same revisions. A damaged snapshot file is
 * refused with its name and the byte offset of the damage, and nothing is
 * written.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Cluster, SERVER_MAIN } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { etcdctl, type CommandResult } from "./tools.js";

const KEYS = 100;
const CAIRN_TIMEOUT_MS = 60_000;

function cairn(args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolveCommand) => {
    execFile(process.execPath, [SERVER_MAIN, ...args], { timeout: CAIRN_TIMEOUT_MS, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolveCommand({ code, stdout, stderr });
    });
  });
}

interface Snapshot {
  keys: Record<string, string>;
  revision: number;
  modRevisions: Record<string, string>;
  memberIds: string[];
}

describe("snapshot save and restore", () => {
  let cluster: Cluster | undefined;
  const folder = mkdtempSync(join(tmpdir(), "cairn-snapshot-test-"));
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  afterAll(async () => {
    await cluster?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  async function describeCluster(current: Cluster): Promise<Snapshot> {
    const client = current.client();
    const response = await client.getAll().prefix("key/").exec();
    const keys: Record<string, string> = {};
    const modRevisions: Record<string, string> = {};
    for (const kv of response.kvs) {
      keys[kv.key.toString()] = kv.value.toString();
      modRevisions[kv.key.toString()] = kv.mod_revision;
    }
    const members = await client.cluster.memberList({ linearizable: true });
    return { keys, modRevisions, revision: Number(response.header.revision), memberIds: members.members.map((member) => member.ID).sort() };
  }

  it("restores a running cluster's snapshot into a new 3-member cluster with the same data at the same revisions", run(async () => {
    cluster = await Cluster.start();
    const client = cluster.client();
    for (let i = 0; i < KEYS; i++) await client.put(`key/${String(i).padStart(3, "0")}`).value(`value ${i}`);
    await client.put("key/000").value("overwritten");
    await client.delete().key("key/001");
    const before = await describeCluster(cluster);
    const file = join(folder, "backup.snap");
    const saved = await cairn(["--endpoints", cluster.endpoints().join(","), "snapshot", "save", file]);
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stdout).toMatch(new RegExp(`^Snapshot saved at ${file} \\(revision ${before.revision}, raft index \\d+, \\d+ bytes\\)`));
    expect(existsSync(`${file}.part`)).toBe(false);
    const checked = await cairn(["snapshot", "status", file, "-w", "json"]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({ revision: before.revision });
    await cluster.stop();
    cluster = undefined;

    cluster = await Cluster.start({
      prepare: async (restored) => {
        for (const member of restored.members) {
          const result = await cairn([
            "snapshot", "restore", file, "--data-dir", member.dataDir, "--name", member.name,
            "--initial-cluster", restored.initialCluster, "--initial-advertise-peer-urls", member.peerUrl,
            "--initial-cluster-token", restored.initialClusterToken,
          ]);
          expect(result.code, result.stderr).toBe(0);
          expect(result.stdout).toMatch(/^Restored .* into .*: member [0-9a-f]+ of new cluster [0-9a-f]+/);
        }
      },
    });
    const after = await describeCluster(cluster);
    expect({ keys: after.keys, modRevisions: after.modRevisions, revision: after.revision }).toEqual({ keys: before.keys, modRevisions: before.modRevisions, revision: before.revision });
    expect(after.keys["key/000"]).toBe("overwritten");
    expect(after.keys["key/001"]).toBeUndefined();
    expect(after.memberIds).toHaveLength(3);
    expect(after.memberIds.some((id) => before.memberIds.includes(id))).toBe(false);
    // A working cluster: writes go on from the restored revision, and every member serves them.
    const written = await etcdctl(cluster.endpoints(), ["put", "key/new", "after restore"]);
    expect(written.code, written.stderr).toBe(0);
    for (const member of cluster.members) {
      const read = await etcdctl([member.endpoint], ["get", "key/new", "--print-value-only"]);
      expect(read.stdout.trim(), member.name).toBe("after restore");
    }
    expect(Number((await cluster.client().get("key/new").exec()).header.revision)).toBe(before.revision + 1);
  }), 2 * CLUSTER_START_TIMEOUT_MS);

  it("refuses a damaged snapshot file, naming the file and the byte offset, and writes nothing", async () => {
    // The file from the first test is the model; damage one byte in its second chunk.
    const good = readFileSync(join(folder, "backup.snap"));
    const damaged = Buffer.from(good);
    const chunkOneStart = 17 + damaged.readUInt32BE(9);
    damaged[chunkOneStart + 40] ^= 0x01;
    const file = join(folder, "damaged.snap");
    writeFileSync(file, damaged);
    const dataDir = join(folder, "never-written");
    const result = await cairn(["snapshot", "restore", file, "--data-dir", dataDir, "--name", "x", "--initial-cluster", "x=http://127.0.0.1:1", "--initial-advertise-peer-urls", "http://127.0.0.1:1"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`cairn snapshot restore: ${file}: damaged snapshot at byte offset ${chunkOneStart}: snapshot chunk 1: checksum mismatch\n`);
    expect(existsSync(join(dataDir, "member"))).toBe(false);
    const truncated = join(folder, "truncated.snap");
    writeFileSync(truncated, good.subarray(0, good.length - 5));
    const status = await cairn(["snapshot", "status", truncated]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(new RegExp(`^cairn snapshot status: ${truncated}: damaged snapshot at byte offset \\d+: snapshot chunk \\d+: stream truncated inside the chunk`));
  }, 60_000);
});
