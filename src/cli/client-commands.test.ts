import { describe, it, expect, beforeAll, afterAll, afterEach } from "vitest";
import { Command } from "commander";
import { FakeCluster, refusedEndpoint } from "../client/testing/fake-cluster.js";
import {
  EXIT_FAILED, EXIT_INDETERMINATE, EXIT_OK, EXIT_USAGE, UsageError, kvGet, parseDurationMs, parseMemberId, printable,
  registerClientCommands, renderTable, toJson, type CommandIo,
} from "./client-commands.js";

class ExitCalled extends Error {
  override name = "ExitCalled";
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface Captured {
  stdout: string;
  stderr: string;
  code: number | undefined;
}

/** Runs `cairn <args>` through commander with captured output; resolves with what it printed and its exit code. */
async function cairn(args: string[], environment: Record<string, string | undefined> = {}): Promise<Captured> {
  const captured: Captured = { stdout: "", stderr: "", code: undefined };
  const io: CommandIo = {
    stdout: (text) => void (captured.stdout += text),
    stderr: (text) => void (captured.stderr += text),
    environment,
    exit: (code) => {
      throw new ExitCalled(code);
    },
    setExitCode: (code) => void (captured.code = code),
  };
  const program = new Command().name("cairn");
  program.configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  program.exitOverride();
  registerClientCommands(program, io);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (!(error instanceof ExitCalled)) throw error;
    captured.code = error.code;
  }
  return captured;
}

describe("client command helpers", () => {
  it("parses durations with etcd's units, and a bare number as milliseconds", () => {
    expect(parseDurationMs("5s", "--t")).toBe(5000);
    expect(parseDurationMs("250ms", "--t")).toBe(250);
    expect(parseDurationMs("1.5m", "--t")).toBe(90_000);
    expect(parseDurationMs("750", "--t")).toBe(750);
    for (const bad of ["", "5 s", "-1s", "0", "soon", "25h"]) expect(() => parseDurationMs(bad, "--t"), bad).toThrow(UsageError);
  });

  it("parses hex member ids as etcdctl prints them, and refuses anything else", () => {
    expect(parseMemberId("8e9e05c52164694d")).toBe(0x8e9e05c52164694dn);
    expect(parseMemberId("0xFF")).toBe(255n);
    for (const bad of ["", "0", "xyz", "12345678901234567", "-1", "1 2"]) expect(() => parseMemberId(bad), bad).toThrow(UsageError);
  });

  it("prints printable UTF-8 as it is and escapes other bytes", () => {
    expect(printable(Buffer.from("héllo"))).toBe("héllo");
    expect(printable(Uint8Array.of(0x61, 0x00, 0xff))).toBe("a\\x00\\xff");
  });

  it("draws bordered tables whose columns fit the widest cell", () => {
    expect(renderTable(["A", "LONG"], [["xyz", "1"]])).toBe("+-----+------+\n| A   | LONG |\n+-----+------+\n| xyz | 1    |\n+-----+------+\n");
  });

  it("writes bigints as exact JSON integers and bytes as base64", () => {
    const text = toJson({ id: 0xffff_ffff_ffff_fffen, key: Buffer.from("k") });
    expect(text).toContain('"id": 18446744073709551614');
    expect(text).toContain('"key": "aw=="');
  });
});

describe("cairn kv, member and status against an in-process cluster", () => {
  let cluster: FakeCluster;
  let endpoints: string;

  beforeAll(async () => {
    cluster = await FakeCluster.start(2);
    cluster.setLeader(1);
    endpoints = cluster.endpoints.join(",");
  });

  afterAll(async () => {
    await cluster.stop();
  });

  afterEach(() => {
    for (const member of cluster.members) member.interceptor = undefined;
  });

  it("puts a key and gets it back as a table", async () => {
    const put = await cairn(["kv", "put", "greeting", "hello world", "--endpoints", endpoints]);
    expect(put).toMatchObject({ code: EXIT_OK, stderr: "" });
    expect(put.stdout).toMatch(/^OK \(revision \d+\)\n$/);
    const get = await cairn(["--endpoints", endpoints, "kv", "get", "greeting"]);
    expect(get.code).toBe(EXIT_OK);
    expect(get.stdout).toMatch(/\| KEY\s+\| VALUE\s+\| VERSION \| MOD REVISION \|/);
    expect(get.stdout).toMatch(/\| greeting \| hello world \| 1\s+\|/);
    expect(cluster.members[1].received.put).toBe(1);
  });

  it("gets as JSON with base64 bytes, exact ids and the header", async () => {
    const get = await cairn(["kv", "get", "greeting", "-w", "json", "--endpoints", endpoints]);
    expect(get.code).toBe(EXIT_OK);
    const parsed = JSON.parse(get.stdout) as { kvs: Array<{ key: string; value: string; version: number }>; count: number };
    expect(Buffer.from(parsed.kvs[0].key, "base64").toString()).toBe("greeting");
    expect(Buffer.from(parsed.kvs[0].value, "base64").toString()).toBe("hello world");
    expect(parsed.count).toBe(1);
    expect(get.stdout).toContain(`"cluster_id": ${0xc0ff_ee00_1234_5678n}`);
  });

  it("gets a prefix with a limit, keys only, and at an old revision", async () => {
    await cairn(["kv", "put", "dir/a", "1", "--endpoints", endpoints]);
    const second = await cairn(["kv", "put", "dir/b", "2", "--endpoints", endpoints, "-w", "json"]);
    const revision = Number(/"revision": (\d+)/.exec(second.stdout)?.[1]);
    await cairn(["kv", "put", "dir/b", "3", "--endpoints", endpoints]);
    const limited = await cairn(["kv", "get", "dir/", "--prefix", "--limit", "1", "--endpoints", endpoints]);
    expect(limited.stdout).toContain("| dir/a |");
    expect(limited.stdout).not.toContain("dir/b");
    expect(limited.stdout).toContain("1 of 2 keys shown");
    const keysOnly = await cairn(["kv", "get", "dir/", "--prefix", "--keys-only", "--endpoints", endpoints]);
    expect(keysOnly.stdout).not.toContain("VALUE");
    expect(keysOnly.stdout).toContain("| dir/b |");
    const old = await cairn(["kv", "get", "dir/b", "--rev", String(revision), "--endpoints", endpoints]);
    expect(old.stdout).toMatch(/\| dir\/b \| 2\s+\|/);
    const missing = await cairn(["kv", "get", "nothing-here", "--endpoints", endpoints]);
    expect(missing).toMatchObject({ code: EXIT_OK, stdout: "" });
    expect(missing.stderr).toContain("no keys match");
  });

  it("deletes a prefix and prints how many keys went", async () => {
    const deleted = await cairn(["kv", "del", "dir/", "--prefix", "--endpoints", endpoints]);
    expect(deleted).toMatchObject({ code: EXIT_OK, stdout: "2\n" });
    const json = await cairn(["kv", "del", "dir/", "--prefix", "-w", "json", "--endpoints", endpoints]);
    expect(JSON.parse(json.stdout)).toMatchObject({ deleted: 0 });
  });

  it("takes endpoints from CAIRN_ENDPOINTS, and --endpoints over it", async () => {
    const fromEnvironment = await cairn(["kv", "get", "greeting"], { CAIRN_ENDPOINTS: endpoints });
    expect(fromEnvironment.stdout).toContain("hello world");
    const overridden = await cairn(["kv", "get", "greeting", "--endpoints", endpoints], { CAIRN_ENDPOINTS: await refusedEndpoint() });
    expect(overridden.code).toBe(EXIT_OK);
  });

  it("exits 2 with a message naming the bad flag or argument", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["kv", "get", "k", "--limit", "ten"], /--limit: expected a non-negative integer/],
      [["kv", "get", "k", "-w", "yaml"], /--write-out: expected table or json/],
      [["kv", "watch", "k", "--rev", "-3"], /--rev: expected a non-negative integer/],
      [["kv", "watch", "k", "--rev", "soon"], /--rev: expected a non-negative integer/],
      [["kv", "get", "k", "--command-timeout", "soon"], /--command-timeout/],
      [["kv", "get", "k", "--endpoints", "ftp://x:1"], /--endpoints: invalid endpoint/],
      [["member", "remove", "not-hex"], /member id: expected a hexadecimal id/],
      [["member", "add", "n4", "--peer-urls", " , "], /--peer-urls: at least one peer URL/],
      [["member", "add", "bad name!", "--peer-urls", "http://127.0.0.1:24099"], /member name/],
    ];
    for (const [args, message] of cases) {
      const result = await cairn([...args, ...(args.includes("--endpoints") ? [] : ["--endpoints", endpoints])]);
      expect(result.code, args.join(" ")).toBe(EXIT_USAGE);
      expect(result.stderr, args.join(" ")).toMatch(message);
    }
    const missingArgument = await cairn(["kv", "get", "--endpoints", endpoints]);
    expect(missingArgument.code).toBe(EXIT_USAGE);
    expect(missingArgument.stderr).toContain("missing required argument");
    const missingOption = await cairn(["member", "add", "n4", "--endpoints", endpoints]);
    expect(missingOption.code).toBe(EXIT_USAGE);
    expect(missingOption.stderr).toContain("--peer-urls");
  });

  it("exits 1 with etcd's message when the cluster refuses, and says so when it cannot be reached", async () => {
    const future = await cairn(["kv", "get", "greeting", "--rev", "99999999", "--endpoints", endpoints]);
    expect(future.code).toBe(EXIT_FAILED);
    expect(future.stderr).toContain("etcdserver: mvcc: required revision is a future revision");
    const empty = await cairn(["kv", "put", "", "v", "--endpoints", endpoints]);
    expect(empty.code).toBe(EXIT_FAILED);
    expect(empty.stderr).toContain("etcdserver: key is not provided");
    const down = await cairn(["kv", "get", "greeting", "--endpoints", await refusedEndpoint(), "--command-timeout", "2s"]);
    expect(down.code).toBe(EXIT_FAILED);
    expect(down.stderr).toContain("Is the cluster running?");
  });

  it("exits 3 and says the outcome is unknown when a put's connection drops after sending", async () => {
    const leader = cluster.members[1];
    leader.interceptor = (method, context) => {
      if (method !== "put") return;
      setImmediate(() => leader.relay.cutAll());
      return new Promise((_, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true }));
    };
    const before = cluster.received("put");
    const result = await cairn(["kv", "put", "maybe", "1", "--endpoints", endpoints]);
    expect(result.code).toBe(EXIT_INDETERMINATE);
    expect(result.stderr).toContain("OUTCOME UNKNOWN");
    expect(result.stderr).toContain("may or may not have been applied");
    expect(cluster.received("put")).toBe(before + 1);
  });

  it("lists members as a table with hex ids and as JSON with exact ids", async () => {
    const table = await cairn(["member", "list", "--endpoints", endpoints]);
    expect(table.code).toBe(EXIT_OK);
    expect(table.stdout).toMatch(/\| ID\s+\| STATUS\s+\| NAME \| PEER ADDRS\s+\| CLIENT ADDRS\s+\| IS LEARNER \|/);
    expect(table.stdout).toMatch(/\| 1000 \| started \| m0\s+\| http:\/\/127\.0\.0\.1:23800 \|/);
    const json = await cairn(["member", "list", "-w", "json", "--endpoints", endpoints]);
    const parsed = JSON.parse(json.stdout) as { members: Array<{ ID: number; name: string }> };
    expect(parsed.members.map((member) => [member.ID, member.name])).toEqual([[0x1000, "m0"], [0x1001, "m1"]]);
  });

  it("adds a learner and prints how to start it, promotes it, removes it, and fails on an unknown id", async () => {
    const added = await cairn(["member", "add", "n9", "--peer-urls", "http://127.0.0.1:24090", "--learner", "--endpoints", endpoints]);
    expect(added.code).toBe(EXIT_OK);
    const id = /Member ([0-9a-f]+) added to cluster c0ffee0012345678 as a learner/.exec(added.stdout)?.[1];
    expect(id).toBeDefined();
    expect(added.stdout).toContain("cairn start --name n9 --initial-cluster m0=http://127.0.0.1:23800,m1=http://127.0.0.1:23801,n9=http://127.0.0.1:24090 --initial-cluster-state existing");
    const promoted = await cairn(["member", "promote", id!, "--endpoints", endpoints]);
    expect(promoted).toMatchObject({ code: EXIT_OK, stdout: `Member ${id} promoted in cluster c0ffee0012345678\n` });
    const removed = await cairn(["member", "remove", id!, "--endpoints", endpoints]);
    expect(removed).toMatchObject({ code: EXIT_OK, stdout: `Member ${id} removed from cluster c0ffee0012345678\n` });
    const again = await cairn(["member", "remove", id!, "--endpoints", endpoints]);
    expect(again.code).toBe(EXIT_FAILED);
    expect(again.stderr).toContain("etcdserver: member not found");
    expect(cluster.members[1].clusterCalls).toEqual(["add", "promote", "remove", "remove"]);
  });

  it("shows one status row per endpoint naming the leader, as a table and as JSON", async () => {
    const table = await cairn(["status", "--endpoints", endpoints]);
    expect(table.code).toBe(EXIT_OK);
    const rows = table.stdout.split("\n").filter((line) => line.startsWith("| 127.0.0.1"));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/\| 1000 \| 3\.5\.0\s+\| 24\.6 kB \| false\s+\| false\s+\| 3\s+\|/);
    expect(rows[1]).toMatch(/\| 1001 \| 3\.5\.0\s+\| 24\.6 kB \| true\s+\| false\s+\| 3\s+\|/);
    const json = await cairn(["status", "-w", "json", "--endpoints", endpoints]);
    const parsed = JSON.parse(json.stdout) as Array<{ endpoint: string; status: { leader: number; raftTerm: number } }>;
    expect(parsed.map((item) => item.endpoint)).toEqual(cluster.endpoints);
    expect(parsed[0].status).toMatchObject({ leader: 0x1001, raftTerm: 3 });
  });

  it("still shows the reachable endpoints' status when one is down, and exits 1", async () => {
    const down = await refusedEndpoint();
    const result = await cairn(["status", "--endpoints", `${cluster.members[0].endpoint},${down}`, "--command-timeout", "2s"]);
    expect(result.code).toBe(EXIT_FAILED);
    expect(result.stdout).toMatch(/\| 1000 \|/);
    expect(result.stdout).toContain(`| ${down} | -`);
    expect(result.stdout).toContain("unreachable:");
    expect(result.stderr).toContain(`cairn status: ${down}:`);
  });

  it("shows the global client flags in a command's help, and exits 0", async () => {
    const help = await cairn(["kv", "get", "--help"]);
    expect(help.code).toBe(EXIT_OK);
    expect(help.stdout).toContain("Usage: cairn kv get [options] <key>");
    expect(help.stdout).toContain("--endpoints <list>");
    expect(help.stdout).toContain("--keys-only");
  });

  it("can be driven through its action functions directly", async () => {
    let stdout = "";
    const io: CommandIo = {
      stdout: (text) => void (stdout += text), stderr: () => undefined, environment: {},
      exit: (code) => {
        throw new ExitCalled(code);
      },
      setExitCode: () => undefined,
    };
    expect(await kvGet("greeting", { endpoints, writeOut: "json" }, io)).toBe(EXIT_OK);
    expect(JSON.parse(stdout)).toMatchObject({ count: 1 });
  });
});
