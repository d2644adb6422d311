/**
 * One load-generator process of the server benchmark:
 * `node dist/bench/server/load-worker.js '<json WorkerOptions>'`.
 *
 * It keeps `inFlight` Puts outstanding on one HTTP/2 connection to one
 * member and takes line commands on stdin, answering each with one JSON line
 * on stdout:
 *   go      start sending                       → {"going":true}
 *   mark    reset the counters (window starts)  → {"marked":true}
 *   report  counters since the mark              → WorkerReport
 *   stop    stop sending, drain (bounded), exit  → {"stopped":true,"abandoned":n}
 * It exits by itself when stdin closes (the parent died) or after
 * `lifetimeMsMax`, so it can never outlive a failed benchmark for long.
 */
import type http2 from "node:http2";
import { createInterface } from "node:readline";
import { LatencyHistogram } from "./latency-histogram.js";
import { connect, GRPC_REQUEST_HEADERS, PUT_PATH, PutRequestEncoder } from "./grpc-wire.js";

export interface WorkerOptions {
  port: number;
  inFlight: number;
  valueBytes: number;
  /** This worker writes keys firstKey .. firstKey + keyCount - 1, round robin. */
  firstKey: number;
  keyCount: number;
  requestTimeoutMs: number;
  lifetimeMsMax: number;
}

export interface WorkerReport {
  completed: number;
  /** error kind → count */
  errors: Record<string, number>;
  elapsedMs: number;
  histogram: number[];
}

const CONNECT_TIMEOUT_MS = 5000;
const DRAIN_TIMEOUT_MS = 10_000;
/** A dead connection is replaced at most this often and this many times: a failing server is reported, not hammered. */
const RECONNECT_DELAY_MS = 250;
const RECONNECTS_MAX = 20;
const ERROR_KIND_LENGTH_MAX = 120;

class LoadWorker {
  private session: http2.ClientHttp2Session | undefined;
  private readonly encoder: PutRequestEncoder;
  private readonly histogram = new LatencyHistogram();
  private errors = new Map<string, number>();
  private completed = 0;
  private markedAt = performance.now();
  private active = 0;
  private nextKey = 0;
  private sending = false;
  private reconnects = 0;
  private reconnecting = false;
  private drained: (() => void) | undefined;

  constructor(private readonly options: WorkerOptions) {
    const value = Buffer.alloc(options.valueBytes);
    for (let index = 0; index < value.length; index++) value[index] = 0x61 + ((index * 7 + options.firstKey) % 26);
    this.encoder = new PutRequestEncoder(value);
  }

  async open(): Promise<void> {
    this.session = await connect(this.options.port, CONNECT_TIMEOUT_MS);
  }

  go(): void {
    this.sending = true;
    for (let index = this.active; index < this.options.inFlight; index++) this.launch();
  }

  mark(): void {
    this.histogram.reset();
    this.errors = new Map();
    this.completed = 0;
    this.markedAt = performance.now();
  }

  report(): WorkerReport {
    return {
      completed: this.completed,
      errors: Object.fromEntries(this.errors),
      elapsedMs: performance.now() - this.markedAt,
      histogram: this.histogram.toJSON(),
    };
  }

  async stop(): Promise<number> {
    this.sending = false;
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const abandoned = this.active;
    this.session?.destroy();
    return abandoned;
  }

  private countError(kind: string): void {
    const key = kind.slice(0, ERROR_KIND_LENGTH_MAX);
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  private launch(): void {
    const session = this.session;
    if (!this.sending) return;
    if (session === undefined || session.closed || session.destroyed) {
      this.replaceSession();
      return;
    }
    this.active++;
    const keyNumber = this.options.firstKey + (this.nextKey++ % this.options.keyCount);
    const started = performance.now();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ...GRPC_REQUEST_HEADERS, ":path": PUT_PATH });
    } catch (error) {
      this.active--;
      this.countError(`request refused by the session: ${(error as Error).message}`);
      this.replaceSession();
      return;
    }
    let grpcStatus: string | undefined;
    let grpcMessage = "";
    let streamError = "";
    const take = (headers: http2.IncomingHttpHeaders): void => {
      if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
      if (headers["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(headers["grpc-message"]));
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", () => undefined);
    stream.on("error", (error) => (streamError = (error as NodeJS.ErrnoException).code ?? error.message));
    stream.setTimeout(this.options.requestTimeoutMs, () => {
      streamError = `no answer within ${this.options.requestTimeoutMs} ms (client timeout)`;
      stream.close(0x8 /* CANCEL */);
    });
    stream.on("close", () => {
      this.active--;
      if (grpcStatus === "0") {
        this.completed++;
        this.histogram.record((performance.now() - started) * 1000);
      } else if (grpcStatus !== undefined) {
        this.countError(`grpc status ${grpcStatus}: ${grpcMessage}`);
      } else {
        this.countError(`stream ${streamError || `closed without status (rst code ${stream.rstCode})`}`);
      }
      if (this.sending) this.launch();
      else if (this.active === 0) this.drained?.();
    });
    stream.end(this.encoder.encode(keyNumber));
  }

  /** Bounded reconnect: the streams that found the session dead wait for one new session. */
  private replaceSession(): void {
    if (this.reconnecting) return;
    if (this.reconnects >= RECONNECTS_MAX) {
      this.countError(`gave up after ${RECONNECTS_MAX} reconnects`);
      this.sending = false;
      if (this.active === 0) this.drained?.();
      return;
    }
    this.reconnecting = true;
    this.reconnects++;
    this.countError("connection lost, reconnecting");
    this.session?.destroy();
    setTimeout(() => {
      connect(this.options.port, CONNECT_TIMEOUT_MS)
        .then((session) => (this.session = session))
        .catch((error: Error) => this.countError(`reconnect failed: ${error.message}`))
        .finally(() => {
          this.reconnecting = false;
          if (this.sending) this.go();
        });
    }, RECONNECT_DELAY_MS);
  }
}

function parseOptions(text: string | undefined): WorkerOptions {
  const options = JSON.parse(text ?? "{}") as WorkerOptions;
  for (const field of ["port", "inFlight", "valueBytes", "firstKey", "keyCount", "requestTimeoutMs", "lifetimeMsMax"] as const) {
    if (!Number.isSafeInteger(options[field]) || options[field] < (field === "firstKey" ? 0 : 1)) {
      throw new Error(`load worker: option ${field} must be a positive integer, got ${String(options[field])}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv[2]);
  const lifetime = setTimeout(() => {
    process.stderr.write(`load worker: lifetime of ${options.lifetimeMsMax} ms reached, exiting\n`);
    process.exit(3);
  }, options.lifetimeMsMax);
  lifetime.unref();
  const worker = new LoadWorker(options);
  const reply = (message: object): void => void process.stdout.write(JSON.stringify(message) + "\n");
  await worker.open();
  reply({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "go") {
      worker.go();
      reply({ going: true });
    } else if (line === "mark") {
      worker.mark();
      reply({ marked: true });
    } else if (line === "report") {
      reply(worker.report());
    } else if (line === "stop") {
      const abandoned = await worker.stop();
      reply({ stopped: true, abandoned });
      break;
    } else {
      process.stderr.write(`load worker: unknown command ${JSON.stringify(line)}\n`);
    }
  }
  process.exit(0);
}

await main();
