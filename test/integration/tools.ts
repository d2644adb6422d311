/**
 * The other clients the process tests drive a cluster with: Debian's
 * etcdctl (3.4, API v3), a raw TCP socket for garbage, and plain HTTP for
 * the metrics endpoint. Every call is bounded in time.
 */
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { get } from "node:http";

export const ETCDCTL = "/usr/bin/etcdctl";
const ETCDCTL_TIMEOUT_MS = 20_000;
const SOCKET_TIMEOUT_MS = 5_000;
const HTTP_TIMEOUT_MS = 5_000;

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl against the endpoints; never throws for a non-zero exit (the tests assert it). */
export function etcdctl(endpoints: readonly string[], args: readonly string[], input?: string): Promise<CommandResult> {
  return new Promise((resolveCommand) => {
    const child = execFile(ETCDCTL, [`--endpoints=${endpoints.join(",")}`, "--dial-timeout=3s", "--command-timeout=10s", ...args], {
      env: { ...process.env, ETCDCTL_API: "3" }, timeout: ETCDCTL_TIMEOUT_MS, encoding: "utf8",
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolveCommand({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

export interface RawExchange {
  /** Bytes the server sent back before it closed or the wait ended. */
  readonly received: Buffer;
  /** true when the server closed the connection, false when the wait ended first. */
  readonly closedByServer: boolean;
}

/** Sends bytes on a fresh TCP connection and collects what comes back for at most waitMs. */
export function sendRaw(port: number, payload: Uint8Array, waitMs = 1000): Promise<RawExchange> {
  return new Promise((resolveExchange, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port });
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolveExchange({ received: Buffer.concat(chunks), closedByServer });
    };
    const timer = setTimeout(() => finish(false), Math.min(waitMs, SOCKET_TIMEOUT_MS));
    socket.on("connect", () => socket.write(payload));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("close", () => finish(true));
    socket.on("error", (error) => {
      // A reset or broken pipe after garbage is the server closing on us; a refused connect is a failure to report.
      const code = (error as NodeJS.ErrnoException).code;
      if (chunks.length > 0 || code === "ECONNRESET" || code === "EPIPE") finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export function httpGet(url: string): Promise<HttpAnswer> {
  return new Promise((resolveAnswer, reject) => {
    const request = get(url, { timeout: HTTP_TIMEOUT_MS }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolveAnswer({ status: response.statusCode ?? 0, body }));
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on("error", reject);
  });
}

/** The value of an unlabelled Prometheus sample, or undefined when absent. */
export function metricValue(exposition: string, name: string): number | undefined {
  for (const line of exposition.split("\n")) {
    if (line.startsWith("#")) continue;
    const [sample, value] = line.split(" ");
    if (sample === name) return Number(value);
  }
  return undefined;
}
