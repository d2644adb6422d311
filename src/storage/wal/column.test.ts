import { describe, expect, it } from "vitest";
import { Column } from "./column.js";

describe("Column", () => {
  it("grows past its capacity keeping every value, and reads back what was set", () => {
    const column = new Column("f64", 2);
    for (let k = 0; k < 1000; k++) column.push(k * 3 - 7);
    expect(column.length).toBe(1000);
    expect(column.get(0)).toBe(-7);
    expect(column.get(999)).toBe(999 * 3 - 7);
    column.set(500, 2 ** 52);
    expect(column.get(500)).toBe(2 ** 52);
  });

  it("truncates and drops from the front without losing the values kept", () => {
    const column = new Column("f64");
    for (let k = 0; k < 100; k++) column.push(k);
    column.truncate(60);
    expect(column.length).toBe(60);
    column.truncate(80); // never lengthens
    expect(column.length).toBe(60);
    column.dropFront(10);
    expect(column.length).toBe(50);
    expect(column.get(0)).toBe(10);
    expect(column.get(49)).toBe(59);
    column.push(7);
    expect(column.get(50)).toBe(7);
  });

  it("a filled u8 column holds small values and takes fills over ranges", () => {
    const column = Column.filled<number>("u8", 40, 1);
    expect(column.length).toBe(40);
    column.fill(0, 10, 20);
    expect([column.get(9), column.get(10), column.get(19), column.get(20)]).toEqual([1, 0, 0, 1]);
  });
});
