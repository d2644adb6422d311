/**
 * The simulated application: a small map of registers. Every command writes a
 * globally unique value, so any history can be checked by value. The
 * machine's state, applied index and membership are persisted together (one
 * "transaction"), as the real server keeps them in one LMDB transaction.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, NodeId } from "../lib/ids.js";
import type { ConfState } from "../raft/types.js";

export const REGISTER_KEYS = ["a", "b", "c", "d", "e", "f"] as const;

export class InvalidCommandError extends Error {
  override name = "InvalidCommandError";
}

export class InvalidSnapshotDataError extends Error {
  override name = "InvalidSnapshotDataError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface Command {
  readonly key: string;
  /** Unique over the whole run. */
  readonly value: number;
}

export function encodeCommand(command: Command): Uint8Array {
  return encoder.encode(`${command.key}=${command.value}`);
}

export function decodeCommand(data: Uint8Array): Command {
  const text = decoder.decode(data);
  const separator = text.indexOf("=");
  const value = Number(text.slice(separator + 1));
  if (separator <= 0 || !Number.isSafeInteger(value)) throw new InvalidCommandError(`not a register command: ${JSON.stringify(text)}`);
  return { key: text.slice(0, separator), value };
}

export interface MachineState {
  readonly values: ReadonlyMap<string, number>;
  readonly applied: LogIndex;
  readonly confState: ConfState;
}

export class RegisterMachine {
  values: Map<string, number>;
  applied: LogIndex;
  confState: ConfState;

  constructor(state: MachineState) {
    this.values = new Map(state.values);
    this.applied = state.applied;
    this.confState = state.confState;
  }

  /** Applies one entry; empty entries (a leader's no-op) only move the applied index. */
  applyCommand(index: LogIndex, data: Uint8Array): void {
    assert(index === this.applied + 1, () => `state machine applies index ${index} after ${this.applied}`);
    this.applied = index;
    if (data.length === 0) return;
    const command = decodeCommand(data);
    this.values.set(command.key, command.value);
  }

  /** Records a membership entry (its effect lives in confState). */
  applyMembership(index: LogIndex, confState: ConfState): void {
    assert(index === this.applied + 1, () => `state machine applies index ${index} after ${this.applied}`);
    this.applied = index;
    this.confState = confState;
  }

  /** The durable image: a copy, so later applies do not leak into it. */
  image(): MachineState {
    return { values: new Map(this.values), applied: this.applied, confState: this.confState };
  }

  encodeSnapshotData(): Uint8Array {
    return encoder.encode(JSON.stringify([...this.values]));
  }
}

export function decodeSnapshotData(data: Uint8Array): Map<string, number> {
  if (data.length === 0) return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new InvalidSnapshotDataError("snapshot data is not JSON", { cause });
  }
  if (!Array.isArray(parsed)) throw new InvalidSnapshotDataError("snapshot data is not a list of registers");
  const values = new Map<string, number>();
  for (const pair of parsed) {
    if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "number") {
      throw new InvalidSnapshotDataError("snapshot register is not a [key, value] pair");
    }
    values.set(pair[0], pair[1]);
  }
  return values;
}

export function nodeList(ids: readonly NodeId[]): string {
  return ids.map(String).join(",");
}
