/**
 * Client endpoints as etcdctl takes them: "host:port", "http://host:port" or
 * "https://host:port" (the scheme selects TLS, as in etcd).
 */
import { InvalidEndpointError } from "./errors.js";

/** Endpoints one client talks to; more would only be a mistake in a flag. */
export const ENDPOINTS_MAX = 64;

export interface Endpoint {
  /** "http://host:port" or "https://host:port": the HTTP/2 authority to connect to. */
  readonly url: string;
  /** "host:port", how the endpoint is named in errors and tables. */
  readonly address: string;
  readonly secure: boolean;
}

export function parseEndpoint(text: string): Endpoint {
  const trimmed = text.trim();
  if (trimmed === "") throw new InvalidEndpointError(text, "empty");
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidEndpointError(text, "not a URL or host:port");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidEndpointError(text, `scheme ${url.protocol} is not http or https`);
  if (url.port === "") throw new InvalidEndpointError(text, "a port is required");
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new InvalidEndpointError(text, "an endpoint has no path, query or fragment");
  }
  if (url.username !== "" || url.password !== "") throw new InvalidEndpointError(text, "credentials do not belong in an endpoint");
  return { url: `${url.protocol}//${url.host}`, address: url.host, secure: url.protocol === "https:" };
}

/** Parses a list (array, or one comma-separated string); refuses an empty list, duplicates and more than ENDPOINTS_MAX. */
export function parseEndpoints(input: string | readonly string[]): Endpoint[] {
  const items = (typeof input === "string" ? input.split(",") : [...input]).map((item) => item.trim()).filter((item) => item !== "");
  if (items.length === 0) throw new InvalidEndpointError(String(input), "no endpoints given");
  if (items.length > ENDPOINTS_MAX) throw new InvalidEndpointError(items.slice(0, 3).join(",") + ",…", `more than ${ENDPOINTS_MAX} endpoints`);
  const endpoints = items.map(parseEndpoint);
  const seen = new Set<string>();
  for (const endpoint of endpoints) {
    if (seen.has(endpoint.url)) throw new InvalidEndpointError(endpoint.address, "listed twice");
    seen.add(endpoint.url);
  }
  return endpoints;
}
