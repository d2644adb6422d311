/**
 * Peer URLs, as etcd writes them: the scheme only selects the security
 * (http:// plaintext, https:// TLS); the protocol spoken is Cairn's own
 * framing, never HTTP. Only a host and a port are meaningful, so anything
 * else in the URL is refused rather than silently ignored.
 */
import { InvalidPeerUrlError } from "./errors.js";

export interface PeerAddress {
  readonly secure: boolean;
  /** Host name or IP address, without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
}

export function parsePeerUrl(text: string): PeerAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(text)} is not a URL`, { cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(text)} must start with http:// or https://`);
  }
  if (url.hostname === "") throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(text)} has no host`);
  if (url.port === "") throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(text)} has no port`);
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" || (url.pathname !== "/" && url.pathname !== "")) {
    throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(text)} may only carry a scheme, a host and a port`);
  }
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { secure: url.protocol === "https:", host, port: Number(url.port) };
}

export function formatPeerUrl(address: PeerAddress): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${address.secure ? "https" : "http"}://${host}:${address.port}`;
}
