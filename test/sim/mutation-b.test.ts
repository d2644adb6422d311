import { describe, expect, it } from "vitest";
import { CHECKER_PROPERTIES, searchForViolation } from "./mutation-search.js";
import { SEARCH_WALL_TIME_MS_MAX } from "./seed-budget.js";

// Three of the six planted faults; mutation-a.test.ts has the others (two files, two vitest workers).
describe("the simulator with a planted fault in the core (part b)", () => {
  it("catches readIndexWithoutQuorum with a safety checker", () => {
    const found = searchForViolation("readIndexWithoutQuorum");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);

  it("catches leaderCountsUnpersisted with a safety checker", () => {
    const found = searchForViolation("leaderCountsUnpersisted");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);

  it("catches jointIncomingOnly with a safety checker", () => {
    const found = searchForViolation("jointIncomingOnly");
    expect(found).not.toBeNull();
    expect(CHECKER_PROPERTIES).toContain(found?.violation?.property);
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);
});
