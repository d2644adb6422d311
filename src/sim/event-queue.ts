/**
 * The simulator's clock and agenda: a binary min-heap of events ordered by
 * simulated time, ties broken by insertion order so that a run is a pure
 * function of its seed (no two events ever compare equal).
 */
import { assert } from "../lib/assert.js";

export interface SimEvent {
  readonly timeMs: number;
  readonly sequence: number;
  readonly run: () => void;
}

/** A bound on queued events: a runaway producer fails loudly instead of eating memory. */
export const EVENT_QUEUE_EVENTS_MAX = 1_000_000;

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private sequenceNext = 0;
  private nowMsValue = 0;

  /** Simulated time of the event being (or last) run. */
  get nowMs(): number {
    return this.nowMsValue;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `run` after `delayMs` (≥ 0) of simulated time. */
  schedule(delayMs: number, run: () => void): void {
    assert(delayMs >= 0 && Number.isFinite(delayMs), () => `event delay must be a finite non-negative number, got ${delayMs}`);
    assert(this.heap.length < EVENT_QUEUE_EVENTS_MAX, "simulator event queue overflow");
    const event: SimEvent = { timeMs: this.nowMsValue + delayMs, sequence: this.sequenceNext++, run };
    const heap = this.heap;
    heap.push(event);
    let child = heap.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!before(event, heap[parent])) break;
      heap[child] = heap[parent];
      child = parent;
    }
    heap[child] = event;
  }

  /** Removes the earliest event, advances the clock to it and runs it. Returns false when empty. */
  runNext(): boolean {
    const event = this.pop();
    if (event === undefined) return false;
    assert(event.timeMs >= this.nowMsValue, "simulated time went backwards");
    this.nowMsValue = event.timeMs;
    event.run();
    return true;
  }

  /** Time of the earliest queued event, or undefined. */
  peekTimeMs(): number | undefined {
    return this.heap[0]?.timeMs;
  }

  private pop(): SimEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop() as SimEvent;
    if (heap.length > 0) {
      let parent = 0;
      for (;;) {
        const left = parent * 2 + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const smaller = right < heap.length && before(heap[right], heap[left]) ? right : left;
        if (!before(heap[smaller], last)) break;
        heap[parent] = heap[smaller];
        parent = smaller;
      }
      heap[parent] = last;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.sequence < b.sequence);
}
