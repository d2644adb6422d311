/** A source of time, injected so that simulated runs control it. */
export interface Clock {
  /** Milliseconds on a monotonic clock; only differences are meaningful. */
  nowMs(): number;
}
