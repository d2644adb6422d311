/**
 * etcd's --auto-compaction-mode/--auto-compaction-retention, run by the
 * leader only (a compaction is a replicated command):
 * - periodic: keep `retention` ms of history. Every retention/10 (at least
 *   every 5 s, at most every hour) the current revision is sampled; the
 *   revision sampled `retention` ago becomes the compaction target.
 * - revision: keep the last `retention` revisions, checked every 5 s.
 */
import type { KvBackend } from "../api/backend.js";

const CHECK_MS_MIN = 5_000;
const CHECK_MS_MAX = 3_600_000;

export interface AutoCompactorOptions {
  readonly mode: "periodic" | "revision";
  /** periodic: milliseconds; revision: revisions. 0 disables. */
  readonly retention: number;
  readonly isLeader: () => boolean;
  readonly log: (message: string) => void;
}

export class AutoCompactor {
  private timer: NodeJS.Timeout | null = null;
  private readonly samples: { atMs: number; revision: number }[] = [];
  private running = false;

  constructor(private readonly backend: KvBackend, private readonly options: AutoCompactorOptions) {}

  start(): void {
    if (this.options.retention <= 0 || this.timer) return;
    const everyMs = this.options.mode === "periodic"
      ? Math.min(CHECK_MS_MAX, Math.max(CHECK_MS_MIN, Math.floor(this.options.retention / 10)))
      : CHECK_MS_MIN;
    this.timer = setInterval(() => void this.check(), everyMs);
    this.timer.unref();
  }

  /** The revision to compact to now, or null (exported for tests through check()). */
  target(nowMs: number): number | null {
    const current = this.backend.mvcc.currentRevision();
    const compacted = this.backend.mvcc.compactRevision();
    if (this.options.mode === "revision") {
      const revision = current - this.options.retention;
      return revision > compacted ? revision : null;
    }
    this.samples.push({ atMs: nowMs, revision: current });
    const horizon = nowMs - this.options.retention;
    let chosen: number | null = null;
    while (this.samples.length > 0 && this.samples[0].atMs <= horizon) chosen = this.samples.shift()!.revision;
    return chosen !== null && chosen > compacted ? chosen : null;
  }

  async check(nowMs = Date.now()): Promise<void> {
    if (this.running) return;
    const revision = this.target(nowMs);
    if (revision === null || !this.options.isLeader()) return;
    this.running = true;
    try {
      await this.backend.propose({ type: "compact", request: { revision, physical: false } }, AbortSignal.timeout(30_000));
      this.options.log(`auto-compaction (${this.options.mode}, retention ${this.options.retention}): compacted to revision ${revision}`);
    } catch (error) {
      this.options.log(`auto-compaction to revision ${revision} failed: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
