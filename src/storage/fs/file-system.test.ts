import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createPrng } from "../../lib/prng.js";
import { FileNotFoundError, StaleFileHandleError, type FileSystem } from "./file-system.js";
import { MemoryFileSystem } from "./memory-file-system.js";
import { NodeFileSystem } from "./node-file-system.js";
import { PowerCutFileSystem } from "./power-cut-file-system.js";

const scratch = mkdtempSync(join(tmpdir(), "cairn-fs-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let directoryCount = 0;
function freshDirectory(): string {
  return join(scratch, `d${directoryCount++}`);
}

const implementations: Array<[string, () => FileSystem, (fs: FileSystem) => string]> = [
  ["the real file system", () => new NodeFileSystem(), freshDirectory],
  ["the power-cut layer", () => new PowerCutFileSystem(new NodeFileSystem()), freshDirectory],
  ["the in-memory file system", () => new MemoryFileSystem(), () => `/data${directoryCount++}`],
];

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe.each(implementations)("%s", (_name, create, directoryFor) => {
  it("reads back what was written, at any offset, and reports the size", async () => {
    const fs = create();
    const directory = directoryFor(fs);
    await fs.mkdir(directory);
    const file = await fs.open(join(directory, "a"), { create: true });
    await file.write(bytes(1, 2, 3, 4), 0);
    await file.write(bytes(9, 9), 6);
    expect(file.size()).toBe(8);
    const buffer = new Uint8Array(10);
    expect(file.readSync(buffer, 0)).toBe(8);
    expect([...buffer.subarray(0, 8)]).toEqual([1, 2, 3, 4, 0, 0, 9, 9]);
    expect(file.readSync(buffer, 2, 3)).toBe(3);
    expect([...buffer.subarray(0, 3)]).toEqual([3, 4, 0]);
    await file.sync();
    await file.truncate(3);
    expect(file.size()).toBe(3);
    expect(file.readSync(buffer, 0)).toBe(3);
    await file.write(bytes(7), 5);
    expect(file.readSync(buffer, 0)).toBe(6);
    expect([...buffer.subarray(0, 6)]).toEqual([1, 2, 3, 0, 0, 7]);
    await file.close();
    await file.close();
    expect(() => file.size()).toThrow(StaleFileHandleError);
  });

  it("keeps an existing file's bytes on open, and refuses to open a missing file without create", async () => {
    const fs = create();
    const directory = directoryFor(fs);
    await fs.mkdir(directory);
    const first = await fs.open(join(directory, "keep"), { create: true });
    await first.write(bytes(5, 6), 0);
    await first.sync();
    await first.close();
    const again = await fs.open(join(directory, "keep"), { create: false });
    expect(again.size()).toBe(2);
    await again.close();
    await expect(fs.open(join(directory, "missing"), { create: false })).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it("renames, lists and unlinks files", async () => {
    const fs = create();
    const directory = directoryFor(fs);
    await fs.mkdir(directory);
    await (await fs.open(join(directory, "x.tmp"), { create: true })).close();
    await fs.rename(join(directory, "x.tmp"), join(directory, "x"));
    await fs.syncDirectory(directory);
    expect((await fs.readdir(directory)).sort()).toEqual(["x"]);
    await fs.unlink(join(directory, "x"));
    expect(await fs.readdir(directory)).toEqual([]);
  });
});

describe("the power-cut layer", () => {
  it("hands writes to the real file only when they are synced", async () => {
    const fs = new PowerCutFileSystem(new NodeFileSystem());
    const directory = freshDirectory();
    await fs.mkdir(directory);
    const path = join(directory, "log");
    const file = await fs.open(path, { create: true });
    await file.write(bytes(1, 2, 3), 0);
    expect(readFileSync(path).length).toBe(0);
    await file.sync();
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    await file.write(bytes(8), 1);
    await file.truncate(2);
    const buffer = new Uint8Array(3);
    expect(file.readSync(buffer, 0)).toBe(2);
    expect([...buffer.subarray(0, 2)]).toEqual([1, 8]);
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    // Closing without a sync is what a killed process does: the overlay is gone.
    await file.close();
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
  });

  it("does not let the caller's later reuse of a buffer change what gets written", async () => {
    const fs = new PowerCutFileSystem(new NodeFileSystem());
    const directory = freshDirectory();
    await fs.mkdir(directory);
    const path = join(directory, "reuse");
    const file = await fs.open(path, { create: true });
    const buffer = bytes(1, 1);
    await file.write(buffer, 0);
    buffer.fill(2);
    await file.sync();
    expect([...readFileSync(path)]).toEqual([1, 1]);
    await file.close();
  });
});

describe("the power-cut layer with overlapping syncs", () => {
  async function layerOverMemory(): Promise<{ disk: MemoryFileSystem; file: Awaited<ReturnType<FileSystem["open"]>> }> {
    // The real file underneath is itself in memory (with slow operations), so the test can see what is durable.
    const disk = new MemoryFileSystem({ latency: "macrotask" });
    const fs = new PowerCutFileSystem(disk);
    await fs.mkdir("/w");
    const file = await fs.open("/w/f", { create: true });
    await fs.syncDirectory("/w");
    return { disk, file };
  }

  it("makes durable, once a later sync resolves, the writes an earlier sync still under way took", async () => {
    const { disk, file } = await layerOverMemory();
    for (let i = 0; i < 3; i++) await file.write(bytes(i + 1), i);
    const earlier = file.sync();
    await file.write(bytes(4), 3);
    await file.sync();
    // fdatasync covers every write made before it was called, whichever sync took it.
    expect([...disk.powerCut().readFile("/w/f")]).toEqual([1, 2, 3, 4]);
    await earlier.catch(() => {});
  });

  it("never makes durable a write made after a sync was called, though an earlier sync is still under way", async () => {
    const { disk, file } = await layerOverMemory();
    await file.write(bytes(1), 0);
    const earlier = file.sync();
    await file.write(bytes(2), 1);
    const later = file.sync();
    await file.write(bytes(3), 2);
    await Promise.all([earlier, later]);
    const buffer = new Uint8Array(3);
    expect(file.readSync(buffer, 0)).toBe(3);
    expect([...buffer]).toEqual([1, 2, 3]);
    expect([...disk.powerCut().readFile("/w/f")]).toEqual([1, 2]);
  });
});

describe("the in-memory file system", () => {
  it("loses unsynced writes in a crash and keeps synced ones", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir("/w");
    const file = await fs.open("/w/f", { create: true });
    await fs.syncDirectory("/w");
    await file.write(bytes(1, 2), 0);
    await file.sync();
    await file.write(bytes(3, 4), 2);
    const restarted = fs.powerCut();
    expect(() => file.size()).toThrow(StaleFileHandleError);
    await expect(fs.readdir("/w")).rejects.toBeInstanceOf(StaleFileHandleError);
    expect([...restarted.readFile("/w/f")]).toEqual([1, 2]);
    expect((await (await restarted.open("/w/f", { create: false })).size())).toBe(2);
  });

  it("loses a created or renamed name in a crash unless its directory was synced", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir("/w");
    const durable = await fs.open("/w/durable", { create: true });
    await durable.sync();
    await fs.syncDirectory("/w");
    await (await fs.open("/w/fleeting", { create: true })).sync();
    await fs.rename("/w/durable", "/w/renamed");
    expect(await fs.powerCut().readdir("/w")).toEqual(["durable"]);
  });

  it("with a seed keeps a prefix of the unsynced writes, the last one possibly torn, and never anything out of order", async () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 60; seed++) {
      const fs = new MemoryFileSystem();
      await fs.mkdir("/w");
      const file = await fs.open("/w/f", { create: true });
      await fs.syncDirectory("/w");
      for (let i = 0; i < 4; i++) await file.write(new Uint8Array(4).fill(i + 1), i * 4);
      const survived = [...fs.powerCut(createPrng(seed)).readFile("/w/f")];
      // A prefix: every surviving byte at position p is write (p / 4)'s, and no gap comes before it.
      survived.forEach((value, position) => expect(value).toBe(Math.floor(position / 4) + 1));
      outcomes.add(String(survived.length));
    }
    expect(outcomes.has("0")).toBe(true);
    expect(outcomes.has("16")).toBe(true);
    expect([...outcomes].some((length) => Number(length) % 4 !== 0)).toBe(true);
  });

  it("counts as durable only the writes made before a sync was called", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    await fs.mkdir("/w");
    const file = await fs.open("/w/f", { create: true });
    await fs.syncDirectory("/w");
    await file.write(bytes(1), 0);
    const syncing = file.sync();
    const late = file.write(bytes(2), 1);
    await Promise.all([syncing, late]);
    expect([...fs.powerCut().readFile("/w/f")]).toEqual([1]);
  });

  it("counts as durable, for each of two overlapping syncs, only the writes made before that sync was called", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    await fs.mkdir("/w");
    const file = await fs.open("/w/f", { create: true });
    await fs.syncDirectory("/w");
    await file.write(bytes(1), 0);
    // The second write lands while the first sync is under way; the second sync is called right after it lands,
    // and the third write lands before that sync completes: only the first two writes are covered.
    let later: Promise<void> = Promise.resolve();
    const second = file.write(bytes(2), 1).then(() => {
      later = file.sync();
    });
    const earlier = file.sync();
    const third = file.write(bytes(3), 2);
    await Promise.all([second, earlier, third]);
    await later;
    expect([...fs.powerCut().readFile("/w/f")]).toEqual([1, 2]);
  });

  it("with crash() stays usable for the restarted machine, while handles and operations from before it fail", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    await fs.mkdir("/w");
    const old = await fs.open("/w/a", { create: true });
    await old.write(bytes(1), 0);
    await old.sync();
    await fs.syncDirectory("/w");
    const renaming = fs.rename("/w/a", "/w/b");
    const view = fs.crash();
    await expect(renaming).rejects.toBeInstanceOf(StaleFileHandleError);
    expect(() => old.size()).toThrow(StaleFileHandleError);
    await expect(old.close()).rejects.toBeInstanceOf(StaleFileHandleError);
    expect(await fs.readdir("/w")).toEqual(["a"]);
    expect((await fs.open("/w/a", { create: false })).size()).toBe(1);
    expect(await view.readdir("/w")).toEqual(["a"]);
  });

  it("lets nothing that was under way at a power cut land afterwards", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    await fs.mkdir("/w");
    await (await fs.open("/w/a", { create: true })).sync();
    await fs.syncDirectory("/w");
    const unlinking = fs.unlink("/w/a");
    const restarted = fs.powerCut();
    await expect(unlinking).rejects.toBeInstanceOf(StaleFileHandleError);
    await expect(fs.syncDirectory("/w")).rejects.toBeInstanceOf(StaleFileHandleError);
    expect(await restarted.readdir("/w")).toEqual(["a"]);
  });
});
