import { describe, expect, it } from "vitest";
import { EventQueue } from "../../src/sim/event-queue.js";
import { AssertionError } from "../../src/lib/assert.js";

describe("the simulator's event queue", () => {
  it("runs events in time order and advances the clock to each", () => {
    const queue = new EventQueue();
    const seen: string[] = [];
    queue.schedule(30, () => seen.push(`c@${queue.nowMs}`));
    queue.schedule(10, () => seen.push(`a@${queue.nowMs}`));
    queue.schedule(20, () => seen.push(`b@${queue.nowMs}`));
    while (queue.runNext());
    expect(seen).toEqual(["a@10", "b@20", "c@30"]);
  });

  it("breaks ties by insertion order so runs are reproducible", () => {
    const queue = new EventQueue();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) queue.schedule(5, () => seen.push(i));
    while (queue.runNext());
    expect(seen).toEqual([...Array(50).keys()]);
  });

  it("schedules relative to the event being run", () => {
    const queue = new EventQueue();
    const times: number[] = [];
    queue.schedule(7, () => queue.schedule(3, () => times.push(queue.nowMs)));
    while (queue.runNext());
    expect(times).toEqual([10]);
  });

  it("keeps heap order over many random insertions", () => {
    const queue = new EventQueue();
    const times: number[] = [];
    let state = 12345;
    for (let i = 0; i < 2000; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      queue.schedule(state % 1000, () => times.push(queue.nowMs));
    }
    while (queue.runNext());
    expect(times).toHaveLength(2000);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("refuses negative or non-finite delays", () => {
    const queue = new EventQueue();
    expect(() => queue.schedule(-1, () => {})).toThrow(AssertionError);
    expect(() => queue.schedule(Number.NaN, () => {})).toThrow(AssertionError);
    expect(() => queue.schedule(Infinity, () => {})).toThrow(AssertionError);
  });

  it("reports an empty queue", () => {
    const queue = new EventQueue();
    expect(queue.runNext()).toBe(false);
    expect(queue.peekTimeMs()).toBeUndefined();
  });
});
