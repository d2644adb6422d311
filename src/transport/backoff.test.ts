import { describe, expect, it } from "vitest";
import { createPrng } from "../lib/prng.js";
import { backoffDelayMs } from "./backoff.js";

const policy = { delayMsMin: 100, delayMsMax: 5_000 };

describe("reconnect backoff", () => {
  it("doubles the ceiling with each failure and never passes the maximum", () => {
    const highest = (attempt: number): number => backoffDelayMs(policy, attempt, () => 0.999999);
    expect(highest(0)).toBe(100);
    expect(highest(1)).toBe(200);
    expect(highest(3)).toBe(800);
    expect(highest(10)).toBe(5_000);
    expect(highest(10_000)).toBe(5_000);
  });

  it("keeps at least half the ceiling so a retry never follows a failure at once", () => {
    expect(backoffDelayMs(policy, 0, () => 0)).toBe(50);
    expect(backoffDelayMs(policy, 20, () => 0)).toBe(2_500);
  });

  it("spreads retries of the same attempt across the jitter window", () => {
    const random = createPrng(7);
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(policy, 4, () => random.float())));
    expect(delays.size).toBeGreaterThan(20);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(800);
      expect(delay).toBeLessThanOrEqual(1_600);
    }
  });

  it("refuses a negative attempt and inverted bounds", () => {
    expect(() => backoffDelayMs(policy, -1, () => 0)).toThrow();
    expect(() => backoffDelayMs({ delayMsMin: 10, delayMsMax: 5 }, 0, () => 0)).toThrow();
  });
});
