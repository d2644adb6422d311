/**
 * Shared pieces for the transport's tests: message builders, a logger that
 * records lines, a polling wait, and throwaway certificates made with the
 * openssl command. Not used by production code.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupId, nodeId, type NodeId } from "../lib/ids.js";
import { MessageType, type Entry, type Message } from "../raft/types.js";
import type { TransportLogger } from "./logger.js";

export function makeMessage(fields: Partial<Message> & { to: NodeId; from: NodeId }): Message {
  return {
    type: MessageType.Heartbeat, group: groupId(0), term: 1, logTerm: 0, index: 0, entries: [], commit: 0,
    snapshot: null, reject: false, rejectHint: 0, context: new Uint8Array(0), ...fields,
  };
}

export function makeEntries(firstIndex: number, term: number, count: number, dataBytes: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    term, index: firstIndex + i, type: 0 as const, data: new Uint8Array(dataBytes).fill((firstIndex + i) & 0xff),
  }));
}

export interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

export class RecordingLogger implements TransportLogger {
  readonly lines: LogLine[] = [];
  info(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "info", fields, message });
  }
  warn(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "warn", fields, message });
  }
  error(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "error", fields, message });
  }
  find(pattern: RegExp, level?: LogLine["level"]): LogLine | undefined {
    return this.lines.find((line) => pattern.test(line.message) && (level === undefined || line.level === level));
  }
}

/** Polls `condition` every few milliseconds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const NODE_1 = nodeId(0x8e9e05c52164694dn);
export const NODE_2 = nodeId(0xfd422379fda50e48n);
export const NODE_3 = nodeId(3);

export interface TestCertificates {
  readonly directory: string;
  readonly caFile: string;
  /** A certificate for 127.0.0.1 signed by the CA. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Signed by a different CA: peers trusting the first CA must refuse it. */
  readonly strangerCertFile: string;
  readonly strangerKeyFile: string;
  remove(): void;
}

/** A CA and leaf certificates for 127.0.0.1 (EC keys: much faster to make than RSA). */
export function makeCertificates(): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), "cairn-transport-tls-"));
  const path = (name: string): string => join(directory, name);
  const openssl = (...args: string[]): void => {
    execFileSync("/usr/bin/openssl", args, { stdio: "pipe" });
  };
  const makeCa = (name: string): void => {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", path(`${name}.key`), "-out", path(`${name}.crt`), "-days", "2", "-subj", `/CN=${name}`);
  };
  const makeLeaf = (name: string, ca: string): void => {
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", path(`${name}.key`), "-out", path(`${name}.csr`), "-subj", `/CN=${name}`);
    writeFileSync(path(`${name}.ext`), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    openssl("x509", "-req", "-in", path(`${name}.csr`), "-CA", path(`${ca}.crt`), "-CAkey", path(`${ca}.key`),
      "-CAcreateserial", "-out", path(`${name}.crt`), "-days", "2", "-extfile", path(`${name}.ext`));
  };
  makeCa("ca");
  makeCa("stranger-ca");
  makeLeaf("peer", "ca");
  makeLeaf("stranger", "stranger-ca");
  return {
    directory,
    caFile: path("ca.crt"),
    certFile: path("peer.crt"),
    keyFile: path("peer.key"),
    strangerCertFile: path("stranger.crt"),
    strangerKeyFile: path("stranger.key"),
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}
