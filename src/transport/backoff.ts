/**
 * Reconnect delays: exponential in the number of consecutive failures,
 * capped, with jitter so that a cluster whose peer restarts does not redial
 * it in lock-step. "Equal jitter": half the delay is fixed, half random, so
 * a retry never comes immediately after a failure.
 */
import { assert } from "../lib/assert.js";

export interface BackoffPolicy {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

/** Delay before retry number `attempt` (0 for the first retry after a failure); `random` returns [0, 1). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number): number {
  assert(policy.delayMsMin > 0 && policy.delayMsMax >= policy.delayMsMin, "backoff bounds must be positive and ordered");
  assert(Number.isInteger(attempt) && attempt >= 0, "backoff attempt must be a non-negative integer");
  // 2^30 is far past any cap; clamping the exponent keeps the arithmetic finite.
  const ceiling = Math.min(policy.delayMsMax, policy.delayMsMin * 2 ** Math.min(attempt, 30));
  const delay = ceiling / 2 + (ceiling / 2) * random();
  return Math.max(policy.delayMsMin / 2, Math.min(policy.delayMsMax, Math.round(delay)));
}
