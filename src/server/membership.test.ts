import { describe, expect, it } from "vitest";
import { nodeId } from "../lib/ids.js";
import { computeClusterId, computeMemberId, decodeMemberContext, encodeMemberContext, MemberContextError } from "./membership.js";

describe("membership", () => {
  it("computes the same member id for the same URLs and token, whatever their order, and different ids otherwise", () => {
    const a = computeMemberId(["http://127.0.0.1:2380", "http://127.0.0.2:2380"], "token");
    expect(computeMemberId(["http://127.0.0.2:2380", "http://127.0.0.1:2380"], "token")).toBe(a);
    expect(computeMemberId(["http://127.0.0.1:2380", "http://127.0.0.2:2380"], "other")).not.toBe(a);
    expect(computeMemberId(["http://127.0.0.1:2380"], "token", 5)).not.toBe(computeMemberId(["http://127.0.0.1:2380"], "token", 6));
    expect(a > 0n && a < 1n << 64n).toBe(true);
  });

  it("derives the cluster id from the set of member ids", () => {
    const ids = [nodeId(3), nodeId(1), nodeId(2)];
    expect(computeClusterId(ids)).toBe(computeClusterId([nodeId(1), nodeId(2), nodeId(3)]));
    expect(computeClusterId([nodeId(1), nodeId(2)])).not.toBe(computeClusterId(ids));
  });

  it("round-trips a member through a conf change context, keeping 64-bit ids exact", () => {
    const member = { id: nodeId((1n << 64n) - 3n), name: "n1", peerUrls: ["http://127.0.0.1:2380"], clientUrls: ["http://127.0.0.1:2379"], isLearner: true };
    expect(decodeMemberContext(encodeMemberContext(member))).toEqual(member);
  });

  it("refuses a context that is not a member", () => {
    for (const text of ["", "{", "[]", '{"id":1,"name":"x","peerUrls":[],"clientUrls":[]}', '{"id":"1","name":"x","peerUrls":[2],"clientUrls":[]}']) {
      expect(() => decodeMemberContext(new TextEncoder().encode(text))).toThrow(MemberContextError);
    }
  });
});
