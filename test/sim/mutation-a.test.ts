import { describe, expect, it } from "vitest";
import { CHECKER_PROPERTIES, searchForViolation } from "./mutation-search.js";
import { SEARCH_WALL_TIME_MS_MAX } from "./seed-budget.js";

// Three of the six planted faults; mutation-b.test.ts has the others (two files, two vitest workers).
describe("the simulator with a planted fault in the core (part a)", () => {
  it("catches commitAnyTerm with a safety checker", () => {
    const found = searchForViolation("commitAnyTerm");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);

  it("catches ackBeforePersist with a safety checker", () => {
    const found = searchForViolation("ackBeforePersist");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);

  it("catches voteIgnoresLog with a safety checker", () => {
    const found = searchForViolation("voteIgnoresLog");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);
});
