import { describe, expect, it } from "vitest";
import { clockTicksPerSecond, machineCpuTicks, parseMachineStat, parseProcessStatTicks, processCpuMicros, ProcCpuError } from "./proc-cpu.js";

// The shape of /proc/<pid>/stat: pid (comm) state ppid ... utime(14) stime(15) ...
function statLine(command: string, userTicks: number, systemTicks: number): string {
  const afterCommand = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", String(userTicks), String(systemTicks), "0", "0", "20", "0", "4"];
  return `4242 (${command}) ${afterCommand.join(" ")}\n`;
}

describe("parseProcessStatTicks", () => {
  it("adds utime and stime counted from the last parenthesis", () => {
    expect(parseProcessStatTicks(statLine("etcd", 1500, 250))).toBe(1750);
  });

  it("is not fooled by spaces and parentheses inside the command name", () => {
    expect(parseProcessStatTicks(statLine("node (main) 7 8", 12, 30))).toBe(42);
  });

  it("refuses text that is not a stat line", () => {
    expect(() => parseProcessStatTicks("hello")).toThrow(ProcCpuError);
    expect(() => parseProcessStatTicks("1 (x) S 1 2")).toThrow(ProcCpuError);
    expect(() => parseProcessStatTicks(statLine("x", -5, 1))).toThrow(ProcCpuError);
  });
});

describe("parseMachineStat", () => {
  it("counts idle and iowait as not busy", () => {
    const text = "cpu  100 5 50 800 40 1 2 0 0 0\ncpu0 50 2 25 400 20 0 1 0 0 0\nintr 1\n";
    expect(parseMachineStat(text)).toEqual({ busy: 158, total: 998 });
  });

  it("refuses a file without the aggregate cpu line", () => {
    expect(() => parseMachineStat("cpu0 1 2 3 4 5\n")).toThrow(ProcCpuError);
    expect(() => parseMachineStat("cpu  a b c d e\n")).toThrow(ProcCpuError);
  });
});

describe("reading /proc", () => {
  it("sees this process's CPU time grow while it computes", () => {
    const ticks = clockTicksPerSecond();
    const before = processCpuMicros([process.pid], ticks);
    const machineBefore = machineCpuTicks();
    const started = performance.now();
    let spin = 0;
    while (performance.now() - started < 150) spin++;
    const after = processCpuMicros([process.pid], ticks);
    expect(spin).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(before);
    expect(machineCpuTicks().busy).toBeGreaterThan(machineBefore.busy);
  });

  it("names the pid it cannot read", () => {
    expect(() => processCpuMicros([2 ** 30], 100)).toThrow(/\/proc\/1073741824\/stat/);
  });
});
