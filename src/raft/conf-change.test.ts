import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { nodeId } from "../lib/ids.js";
import { applyChange, ConfChangeDecodeError, decodeConfChange, encodeConfChange, InvalidConfChangeError } from "./conf-change.js";
import { configFromConfState } from "./progress.js";
import { ConfChangeTransition, ConfChangeType, type ConfChange } from "./types.js";
import { confState } from "./util.js";

const none = new Uint8Array(0);
const add = (id: number) => ({ type: ConfChangeType.AddNode, nodeId: nodeId(id) });
const remove = (id: number) => ({ type: ConfChangeType.RemoveNode, nodeId: nodeId(id) });
const learner = (id: number) => ({ type: ConfChangeType.AddLearner, nodeId: nodeId(id) });

describe("conf change encoding", () => {
  it("round-trips every field, including 64-bit node ids", () => {
    fc.assert(fc.property(
      fc.constantFrom(0, 1, 2), fc.array(fc.tuple(fc.constantFrom(0, 1, 2), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 64 }),
      (transition, changes, context) => {
        const change: ConfChange = {
          transition: transition as ConfChange["transition"],
          changes: changes.map(([type, id]) => ({ type: type as ConfChangeType, nodeId: nodeId(id) })),
          context,
        };
        expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
      }));
  });

  it("rejects truncated, padded and garbage bytes with a typed error, never a partial change", () => {
    const bytes = encodeConfChange({ transition: ConfChangeTransition.Auto, changes: [add(1), remove(2)], context: new Uint8Array([7, 7]) });
    for (let length = 0; length < bytes.length; length++) {
      expect(() => decodeConfChange(bytes.slice(0, length))).toThrow(ConfChangeDecodeError);
    }
    expect(() => decodeConfChange(new Uint8Array([...bytes, 0]))).toThrow(ConfChangeDecodeError);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
      try {
        decodeConfChange(garbage);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfChangeDecodeError);
      }
    }));
  });
});

describe("applying conf changes", () => {
  const base = configFromConfState(confState([1, 2, 3]));

  it("a single added voter is a simple change, with no joint state", () => {
    const next = applyChange(base, { transition: ConfChangeTransition.Auto, changes: [add(4)], context: none });
    expect(next.voters).toEqual([1n, 2n, 3n, 4n]);
    expect(next.votersOutgoing).toEqual([]);
  });

  it("several changes enter a joint configuration that leaves automatically", () => {
    const next = applyChange(base, { transition: ConfChangeTransition.Auto, changes: [add(4), remove(1)], context: none });
    expect(next.voters).toEqual([2n, 3n, 4n]);
    expect(next.votersOutgoing).toEqual([1n, 2n, 3n]);
    expect(next.autoLeave).toBe(true);
    const left = applyChange(next, { transition: ConfChangeTransition.Auto, changes: [], context: none });
    expect(left.votersOutgoing).toEqual([]);
    expect(left.voters).toEqual([2n, 3n, 4n]);
  });

  it("an explicit joint transition does not leave by itself", () => {
    const next = applyChange(base, { transition: ConfChangeTransition.JointExplicit, changes: [add(4)], context: none });
    expect(next.votersOutgoing).toEqual([1n, 2n, 3n]);
    expect(next.autoLeave).toBe(false);
  });

  it("demoting a voter while joint parks it in learnersNext until the joint config is left", () => {
    const next = applyChange(base, { transition: ConfChangeTransition.JointImplicit, changes: [learner(3)], context: none });
    expect(next.voters).toEqual([1n, 2n]);
    expect(next.learners).toEqual([]);
    expect(next.learnersNext).toEqual([3n]);
    const left = applyChange(next, { transition: ConfChangeTransition.Auto, changes: [], context: none });
    expect(left.learners).toEqual([3n]);
    expect(left.learnersNext).toEqual([]);
  });

  it("sends two voter changes through joint consensus, and refuses removing every voter, re-entering joint and leaving a non-joint config", () => {
    expect(() => applyChange(base, { transition: ConfChangeTransition.Auto, changes: [add(4), add(5)], context: none })).not.toThrow();
    const single = configFromConfState(confState([1]));
    expect(() => applyChange(single, { transition: ConfChangeTransition.Auto, changes: [remove(1)], context: none })).toThrow(InvalidConfChangeError);
    const joint = applyChange(base, { transition: ConfChangeTransition.JointImplicit, changes: [add(4)], context: none });
    expect(() => applyChange(joint, { transition: ConfChangeTransition.JointImplicit, changes: [add(5)], context: none })).toThrow(/already joint/);
    expect(() => applyChange(base, { transition: ConfChangeTransition.Auto, changes: [], context: none })).toThrow(/not in one/);
    expect(() => applyChange(base, { transition: ConfChangeTransition.Auto, changes: [add(0)], context: none })).toThrow(/reserved/);
  });
});
