import { describe, it } from "vitest";
import { SEARCH_WALL_TIME_MS_MAX, checkFreshSeeds } from "./seed-budget.js";

// Half of the CI seed budget; seeds-a.test.ts runs the other half in the second vitest worker.
describe("the simulator over fresh seeds (part b)", () => {
  it("finds no safety or liveness violation in 1000 swarm-drawn clusters", () => {
    checkFreshSeeds("sim part b");
  }, SEARCH_WALL_TIME_MS_MAX + 60_000);
});
