/**
 * CPU time from /proc, so server processes written in any language (Cairn in
 * Node, etcd in Go) are measured the same way: utime + stime of the process
 * (all its threads), and the machine's busy time to see how much of the CPU
 * other work took during a measurement.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export class ProcCpuError extends Error {
  override name = "ProcCpuError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const CLOCK_TICKS_PER_SECOND_DEFAULT = 100;

/** The kernel's USER_HZ; /proc counts CPU time in these ticks. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5000 }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : CLOCK_TICKS_PER_SECOND_DEFAULT;
  } catch {
    return CLOCK_TICKS_PER_SECOND_DEFAULT;
  }
}

/**
 * utime + stime in ticks from the text of /proc/<pid>/stat. The command name
 * (field 2) is in parentheses and may hold spaces, so fields are counted from
 * the last ')': state is field 3, utime field 14, stime field 15.
 */
export function parseProcessStatTicks(statText: string): number {
  const closing = statText.lastIndexOf(")");
  if (closing < 0) throw new ProcCpuError("no ')' after the command name in /proc/<pid>/stat");
  const fields = statText.slice(closing + 2).trim().split(/\s+/);
  const userTicks = Number(fields[14 - 3]);
  const systemTicks = Number(fields[15 - 3]);
  if (!Number.isSafeInteger(userTicks) || !Number.isSafeInteger(systemTicks) || userTicks < 0 || systemTicks < 0) {
    throw new ProcCpuError(`utime/stime are not tick counts in /proc/<pid>/stat: ${JSON.stringify(statText.slice(0, 200))}`);
  }
  return userTicks + systemTicks;
}

/** CPU microseconds used so far by each process (they must still be running). */
export function processCpuMicros(pids: readonly number[], ticksPerSecond: number): number {
  let ticks = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch (error) {
      throw new ProcCpuError(`cannot read /proc/${pid}/stat (has the process exited?)`, { cause: error });
    }
    ticks += parseProcessStatTicks(text);
  }
  return (ticks * 1_000_000) / ticksPerSecond;
}

export interface MachineCpuTicks {
  busy: number;
  total: number;
}

/** Busy and total ticks over all cores from the first ("cpu ") line of /proc/stat; idle and iowait count as not busy. */
export function parseMachineStat(statText: string): MachineCpuTicks {
  const line = statText.split("\n").find((candidate) => candidate.startsWith("cpu "));
  if (line === undefined) throw new ProcCpuError("no aggregate 'cpu ' line in /proc/stat");
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (values.length < 5 || values.some((value) => !Number.isSafeInteger(value) || value < 0)) {
    throw new ProcCpuError(`unexpected 'cpu ' line in /proc/stat: ${line}`);
  }
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = values[3] + values[4];
  return { busy: total - idle, total };
}

export function machineCpuTicks(): MachineCpuTicks {
  return parseMachineStat(readFileSync("/proc/stat", "utf8"));
}
