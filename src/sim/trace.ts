/**
 * A bounded ring of trace lines: a failing run shows its last events without
 * the simulator ever holding a whole run's history in memory.
 */
import { assert } from "../lib/assert.js";
import type { NodeId } from "../lib/ids.js";

export class TraceLog {
  private readonly ring: string[] = [];
  private next = 0;

  constructor(private readonly linesMax: number) {
    assert(Number.isInteger(linesMax) && linesMax > 0, () => `trace size must be a positive integer, got ${linesMax}`);
  }

  add(timeMs: number, node: NodeId, text: string): void {
    const who = node === 0n ? "   " : `n${node}`.padEnd(3);
    const line = `${timeMs.toFixed(1).padStart(9)}ms ${who} ${text}`;
    if (this.ring.length < this.linesMax) this.ring.push(line);
    else this.ring[this.next] = line;
    this.next = (this.next + 1) % this.linesMax;
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    if (this.ring.length < this.linesMax) return this.ring.slice();
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}
