/**
 * `npm run bench -- grpc [--json] [--seconds 5] [--in-flight 64]`
 *
 * Server CPU per request of Cairn's lean HTTP/2 gRPC server beside a grpc-js
 * server, both answering KV.Put from memory, driven by the same lean HTTP/2
 * load generator. Each server runs in a child process so that only its own
 * CPU (process.cpuUsage, user + system) is counted; the load generator's CPU
 * is reported separately. Results are ratios against grpc-js measured in the
 * same run.
 *
 * The same file is the child: `node dist/bench/grpc.js --child http2|grpc-js`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import http2 from "node:http2";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./common.js";

const PUT_PATH = "/etcdserverpb.KV/Put";
const VALUE_BYTES = 256;
const DISTINCT_KEYS = 1000;
const WARM_UP_MS = 1000;
const CHILD_START_TIMEOUT_MS = 20_000;

type ServerKind = "grpc-js" | "http2";

interface CpuSample {
  userMicros: number;
  systemMicros: number;
}

// ------------------------------------------------------------------ child side

async function runChild(kind: ServerKind): Promise<void> {
  const store = new Map<string, Uint8Array>();
  let revision = 1;
  const header = () => ({ clusterId: 0x1234_5678_9abc_def0n, memberId: 0x0fed_cba9_8765_4321n, revision, raftTerm: 2 });
  let port: number;
  let close: () => Promise<void>;
  if (kind === "http2") {
    const { createGrpcServer, registerEtcdServices } = await import("../src/api/mod.js");
    const server = createGrpcServer();
    registerEtcdServices(server, {
      kv: {
        put: async (request) => {
          store.set(Buffer.from(request.key).toString("latin1"), request.value);
          revision++;
          return { header: header() };
        },
        range: async () => ({ header: header(), kvs: [], more: false, count: 0 }),
        deleteRange: async () => ({ header: header(), deleted: 0, prevKvs: [] }),
        txn: async () => ({ header: header(), succeeded: true, responses: [] }),
        compact: async () => ({ header: header() }),
      },
    });
    port = (await server.listen(0)).port;
    close = () => server.close(1000);
  } else {
    const grpc = await import("@grpc/grpc-js");
    const protoLoader = await import("@grpc/proto-loader");
    const { protoDirectory } = await import("../src/api/mod.js");
    const definition = protoLoader.loadSync(`${protoDirectory()}rpc.proto`, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const etcdserverpb = (grpc.loadPackageDefinition(definition) as any).etcdserverpb;
    const server = new grpc.Server();
    type PutCall = { request: { key: Buffer; value: Buffer } };
    server.addService(etcdserverpb.KV.service, {
      Put: (call: PutCall, callback: (error: null, response: object) => void) => {
        store.set(call.request.key.toString("latin1"), call.request.value);
        revision++;
        const { clusterId, memberId } = header();
        callback(null, { header: { cluster_id: clusterId.toString(), member_id: memberId.toString(), revision: String(revision), raft_term: "2" } });
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    close = () => new Promise((resolve) => server.tryShutdown(() => resolve()));
  }
  const reply = (message: object): void => void process.stdout.write(JSON.stringify(message) + "\n");
  reply({ port });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "cpu") {
      const usage = process.cpuUsage();
      reply({ userMicros: usage.user, systemMicros: usage.system });
    } else if (line === "stop") {
      await close();
      reply({ stopped: true });
      process.exit(0);
    }
  }
}

// ------------------------------------------------------------------ parent side

class Child {
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly process: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: process.stdout })[Symbol.asyncIterator]();
  }

  static async start(kind: ServerKind): Promise<{ child: Child; port: number }> {
    const script = fileURLToPath(import.meta.url);
    const child = new Child(spawn(process.execPath, [script, "--child", kind], { stdio: ["pipe", "pipe", "pipe"] }));
    child.process.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
    const first = await child.read<{ port: number }>(CHILD_START_TIMEOUT_MS);
    return { child, port: first.port };
  }

  private async read<T>(timeoutMs = 10_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("bench child did not answer")), timeoutMs)));
    try {
      const next = await Promise.race([this.lines.next(), timeout]);
      if (next.done) throw new Error("bench child exited");
      return JSON.parse(next.value) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  async cpu(): Promise<CpuSample> {
    this.process.stdin.write("cpu\n");
    return this.read<CpuSample>();
  }

  async stop(): Promise<void> {
    this.process.stdin.write("stop\n");
    await this.read().catch(() => undefined);
    if (this.process.exitCode === null) this.process.kill("SIGTERM");
  }
}

/** A PutRequest, framed, encoded by hand (key = field 1, value = field 2) so the client costs little. */
function framedPut(index: number): Buffer {
  const key = Buffer.from(`bench/key-${index}`);
  const value = Buffer.alloc(VALUE_BYTES, index & 0xff);
  const body = Buffer.concat([Buffer.of(0x0a, key.length), key, Buffer.of(0x12, VALUE_BYTES & 0x7f | 0x80, VALUE_BYTES >> 7), value]);
  const framed = Buffer.alloc(5 + body.length);
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, 5);
  return framed;
}

interface LoadResult {
  requests: number;
  failures: number;
  elapsedMs: number;
  clientCpuMicros: number;
}

/** Keeps `inFlight` Puts outstanding on one HTTP/2 connection for `durationMs`. */
async function drive(port: number, inFlight: number, durationMs: number, requests: readonly Buffer[]): Promise<LoadResult> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  const headers = { ":method": "POST", ":path": PUT_PATH, "content-type": "application/grpc", te: "trailers" };
  let completed = 0;
  let failures = 0;
  let sent = 0;
  let stopping = false;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  await new Promise<void>((resolve) => {
    let active = 0;
    const launch = (): void => {
      if (stopping || performance.now() >= deadline) {
        stopping = true;
        if (active === 0) resolve();
        return;
      }
      active++;
      const stream = session.request(headers);
      let status: string | undefined;
      stream.on("response", (response) => (status = response["grpc-status"] as string | undefined ?? status));
      stream.on("trailers", (trailers) => (status = trailers["grpc-status"] as string | undefined));
      stream.on("data", () => undefined);
      stream.on("error", () => undefined);
      stream.on("close", () => {
        active--;
        if (status === "0") completed++;
        else failures++;
        launch();
      });
      stream.end(requests[sent++ % requests.length]);
    };
    for (let index = 0; index < inFlight; index++) launch();
  });
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  session.close();
  return { requests: completed, failures, elapsedMs, clientCpuMicros: cpu.user + cpu.system };
}

interface Measurement {
  server: ServerKind;
  requestsPerSecond: number;
  serverCpuMicrosPerRequest: number;
  clientCpuMicrosPerRequest: number;
  requests: number;
  failures: number;
}

async function measure(kind: ServerKind, inFlight: number, durationMs: number, requests: readonly Buffer[]): Promise<Measurement> {
  const { child, port } = await Child.start(kind);
  try {
    await drive(port, inFlight, WARM_UP_MS, requests);
    const before = await child.cpu();
    const load = await drive(port, inFlight, durationMs, requests);
    const after = await child.cpu();
    const serverCpuMicros = after.userMicros - before.userMicros + after.systemMicros - before.systemMicros;
    return {
      server: kind,
      requestsPerSecond: load.requests / (load.elapsedMs / 1000),
      serverCpuMicrosPerRequest: serverCpuMicros / Math.max(1, load.requests),
      clientCpuMicrosPerRequest: load.clientCpuMicros / Math.max(1, load.requests),
      requests: load.requests,
      failures: load.failures,
    };
  } finally {
    await child.stop();
  }
}

export async function run(context: BenchContext): Promise<void> {
  const durationMs = Number(context.option("seconds", "5")) * 1000;
  const inFlight = Number(context.option("in-flight", "64"));
  const requests = Array.from({ length: DISTINCT_KEYS }, (_, index) => framedPut(index));
  context.note(`KV.Put from memory, ${VALUE_BYTES}-byte values, ${inFlight} in flight on one HTTP/2 connection, ${durationMs / 1000} s per row after ${WARM_UP_MS / 1000} s warm-up; servers in child processes.`);
  const baseline = await measure("grpc-js", inFlight, durationMs, requests);
  const lean = await measure("http2", inFlight, durationMs, requests);
  for (const result of [baseline, lean]) {
    context.report({
      server: result.server === "http2" ? "cairn http2" : "grpc-js",
      "requests/s": Math.round(result.requestsPerSecond),
      "server CPU µs/request": Number(result.serverCpuMicrosPerRequest.toFixed(1)),
      "server CPU vs grpc-js": Number((result.serverCpuMicrosPerRequest / baseline.serverCpuMicrosPerRequest).toFixed(3)),
      "requests/s vs grpc-js": Number((result.requestsPerSecond / baseline.requestsPerSecond).toFixed(3)),
      "client CPU µs/request": Number(result.clientCpuMicrosPerRequest.toFixed(1)),
      requests: result.requests,
      failures: result.failures,
    });
  }
}

const childAt = process.argv.indexOf("--child");
if (childAt >= 0 && process.argv[1] === fileURLToPath(import.meta.url)) {
  const kind = process.argv[childAt + 1];
  if (kind !== "http2" && kind !== "grpc-js") throw new Error(`unknown bench child ${kind}`);
  await runChild(kind);
}
