import { describe, it, expect } from "vitest";
import { ENDPOINTS_MAX, parseEndpoint, parseEndpoints } from "./endpoint.js";
import { InvalidEndpointError } from "./errors.js";

describe("endpoint parsing", () => {
  it("takes host:port, http:// and https:// forms, IPv6 included", () => {
    expect(parseEndpoint("127.0.0.1:2379")).toEqual({ url: "http://127.0.0.1:2379", address: "127.0.0.1:2379", secure: false });
    expect(parseEndpoint(" http://node-1:12379/ ")).toEqual({ url: "http://node-1:12379", address: "node-1:12379", secure: false });
    expect(parseEndpoint("https://[::1]:2379")).toEqual({ url: "https://[::1]:2379", address: "[::1]:2379", secure: true });
  });

  it("refuses endpoints without a port, with a path, query or credentials, or of another scheme", () => {
    for (const bad of ["127.0.0.1", "http://a", "http://a:1/v3", "http://a:1?x=1", "unix://a:1", "http://u:p@a:1", "a:99999", "", "   "]) {
      expect(() => parseEndpoint(bad), bad).toThrow(InvalidEndpointError);
    }
  });

  it("splits a comma-separated list, skipping blanks, and refuses duplicates, empty lists and too many endpoints", () => {
    expect(parseEndpoints("a:1, b:2,,").map((endpoint) => endpoint.address)).toEqual(["a:1", "b:2"]);
    expect(() => parseEndpoints(",")).toThrow(/no endpoints/);
    expect(() => parseEndpoints(["a:1", "http://a:1"])).toThrow(/listed twice/);
    const many = Array.from({ length: ENDPOINTS_MAX + 1 }, (_, index) => `h:${index + 1}`);
    expect(() => parseEndpoints(many)).toThrow(/more than/);
  });
});
