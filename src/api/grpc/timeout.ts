/**
 * The grpc-timeout request header: up to 8 ASCII digits and a unit (H hours,
 * M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds).
 */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
const TIMEOUT_PATTERN = /^(\d{1,8})([HMSmun])$/;

export class MalformedTimeoutError extends Error {
  override name = "MalformedTimeoutError";
}

/** Milliseconds of the timeout, or undefined when the header is absent. */
export function parseGrpcTimeoutMs(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  const match = TIMEOUT_PATTERN.exec(value);
  if (!match) throw new MalformedTimeoutError(`malformed grpc-timeout: ${JSON.stringify(value)}`);
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** The header value for a timeout, as clients send it (used by the test and bench clients). */
export function formatGrpcTimeout(timeoutMs: number): string {
  const milliseconds = Math.max(0, Math.ceil(timeoutMs));
  return milliseconds < 100_000_000 ? `${milliseconds}m` : `${Math.ceil(milliseconds / 1000)}S`;
}
