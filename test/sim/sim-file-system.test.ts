import { describe, expect, it } from "vitest";
import { createPrng } from "../../src/lib/prng.js";
import { MemoryFileSystem } from "../../src/storage/fs/memory-file-system.js";
import { EventQueue } from "../../src/sim/event-queue.js";
import { SimFileSystem, type DiskClock } from "../../src/sim/sim-file-system.js";

const WRITE_DELAY_MS = 1;
const SYNC_DELAY_MS = 5;

function simulatedDisk(): { queue: EventQueue; disk: MemoryFileSystem; fileSystem: SimFileSystem; completions: () => number } {
  const queue = new EventQueue();
  const disk = new MemoryFileSystem();
  let completions = 0;
  const clock: DiskClock = {
    nowMs: () => queue.nowMs,
    schedule: (delayMs, run) => queue.schedule(delayMs, run),
    writeDelayMs: () => WRITE_DELAY_MS,
    syncDelayMs: () => SYNC_DELAY_MS,
    onCompletion: () => {
      completions++;
    },
  };
  return { queue, disk, fileSystem: new SimFileSystem(disk, clock), completions: () => completions };
}

/** Lets every queued microtask run. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs events one at a time, draining microtasks after each, as the simulator's WAL mode does. */
async function runEvents(queue: EventQueue, untilMs = Infinity): Promise<void> {
  await drain();
  while ((queue.peekTimeMs() ?? Infinity) <= untilMs && queue.runNext()) await drain();
}

describe("the simulator's disk", () => {
  it("completes writes and syncs in simulated time, in the order they were issued", async () => {
    const { queue, disk, fileSystem, completions } = simulatedDisk();
    const handle = await fileSystem.open("/f", { create: true });
    const done: string[] = [];
    void handle.write(new Uint8Array([1, 2, 3]), 0).then(() => done.push(`write@${queue.nowMs}`));
    void handle.sync().then(() => done.push(`sync@${queue.nowMs}`));
    void handle.write(new Uint8Array([4]), 3).then(() => done.push(`second write@${queue.nowMs}`));
    await drain();
    expect(done).toEqual([]);
    expect(fileSystem.operationsInFlight).toBe(3);
    await runEvents(queue);
    expect(done).toEqual([`write@${WRITE_DELAY_MS}`, `sync@${WRITE_DELAY_MS + SYNC_DELAY_MS}`, `second write@${2 * WRITE_DELAY_MS + SYNC_DELAY_MS}`]);
    expect(completions()).toBe(3);
    expect(fileSystem.operationsInFlight).toBe(0);
    expect([...disk.readFile("/f")]).toEqual([1, 2, 3, 4]);
  });

  it("loses a write whose sync had not completed when the power went, or keeps a prefix of it", async () => {
    const kept = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const { queue, disk, fileSystem } = simulatedDisk();
      const handle = await fileSystem.open("/f", { create: true });
      const durableName = fileSystem.syncDirectory("/");
      await runEvents(queue);
      await durableName;
      const data = new Uint8Array(64).fill(7);
      let synced = false;
      void handle.write(data, 0);
      void handle.sync().then(() => {
        synced = true;
      });
      // The write has landed (page cache), its sync has not completed.
      await runEvents(queue, queue.nowMs + WRITE_DELAY_MS + SYNC_DELAY_MS - 1);
      expect(fileSystem.operationsInFlight).toBe(1);
      fileSystem.kill();
      const restarted = disk.crash(createPrng(seed));
      await runEvents(queue);
      expect(synced).toBe(false);
      const survivor = restarted.readFile("/f");
      expect(survivor.length).toBeLessThanOrEqual(data.length);
      expect(survivor.every((byte) => byte === 7)).toBe(true);
      kept.add(survivor.length);
    }
    // Over many seeds: lost entirely, kept whole, and torn somewhere in between.
    expect(kept.has(0)).toBe(true);
    expect(kept.has(64)).toBe(true);
    expect([...kept].some((length) => length > 0 && length < 64)).toBe(true);
  });

  it("settles nothing for a killed process, not even operations that were already queued", async () => {
    const { queue, fileSystem } = simulatedDisk();
    const handle = await fileSystem.open("/f", { create: true });
    let settled = 0;
    const count = (): void => {
      settled++;
    };
    handle.write(new Uint8Array([1]), 0).then(count, count);
    handle.sync().then(count, count);
    fileSystem.kill();
    fileSystem.readdir("/").then(count, count);
    await runEvents(queue);
    expect(settled).toBe(0);
    expect(fileSystem.killed).toBe(true);
  });

  it("lets a killed process's leftover code change nothing on the disk", async () => {
    const { queue, disk, fileSystem } = simulatedDisk();
    const handle = await fileSystem.open("/a", { create: true });
    void handle.write(new Uint8Array([5]), 0);
    void handle.sync();
    void fileSystem.syncDirectory("/");
    await runEvents(queue);
    fileSystem.kill();
    void fileSystem.rename("/a", "/b");
    void fileSystem.unlink("/a");
    void fileSystem.open("/c", { create: true });
    void handle.write(new Uint8Array([9]), 0);
    await runEvents(queue);
    expect(disk.listFiles()).toEqual(["/a"]);
    expect([...disk.readFile("/a")]).toEqual([5]);
  });

  it("passes failures of the disk through to a live process", async () => {
    const { queue, fileSystem } = simulatedDisk();
    await expect(fileSystem.open("/missing", { create: false })).rejects.toThrow(/no such file/);
    await expect(fileSystem.unlink("/missing")).rejects.toThrow(/no such file/);
    await runEvents(queue);
  });
});
