import { describe, expect, it } from "vitest";
import { InvalidPeerUrlError } from "./errors.js";
import { formatPeerUrl, parsePeerUrl } from "./peer-url.js";

describe("peer URLs", () => {
  it("select plaintext with http and TLS with https", () => {
    expect(parsePeerUrl("http://127.0.0.1:2380")).toEqual({ secure: false, host: "127.0.0.1", port: 2380 });
    expect(parsePeerUrl("https://node-1.example:2380/")).toEqual({ secure: true, host: "node-1.example", port: 2380 });
  });

  it("accept bracketed IPv6 hosts and print them back the same way", () => {
    const address = parsePeerUrl("https://[::1]:2380");
    expect(address.host).toBe("::1");
    expect(formatPeerUrl(address)).toBe("https://[::1]:2380");
  });

  it("refuse other schemes, missing ports, paths, credentials and non-URLs", () => {
    for (const bad of ["tcp://127.0.0.1:2380", "http://127.0.0.1", "http://127.0.0.1:2380/raft", "http://user@127.0.0.1:2380", "127.0.0.1:2380", "http://127.0.0.1:2380?x=1", ""]) {
      expect(() => parsePeerUrl(bad), bad).toThrow(InvalidPeerUrlError);
    }
  });
});
