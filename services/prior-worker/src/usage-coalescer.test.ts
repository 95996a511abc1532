import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createUsageCoalescer } from "./usage-coalescer.js";

describe("createUsageCoalescer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("writes each tenant's summed seconds once per interval, and nothing while idle", () => {
    const writes: [string, number][] = [];
    const usage = createUsageCoalescer((tenant, d) => writes.push([tenant, d.priorSeconds]), 1000);
    usage.add("acme", 0.25);
    usage.add("globex", 0.125);
    usage.add("acme", 0.5);
    vi.advanceTimersByTime(999);
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(writes).toEqual([
      ["acme", 0.75],
      ["globex", 0.125],
    ]);
    vi.advanceTimersByTime(5000);
    expect(writes).toHaveLength(2);
    usage.add("acme", 1);
    vi.advanceTimersByTime(1000);
    expect(writes.at(-1)).toEqual(["acme", 1]);
  });

  it("the final flush writes what is pending at once, and later adds go straight through", () => {
    const writes: [string, number][] = [];
    const usage = createUsageCoalescer((tenant, d) => writes.push([tenant, d.priorSeconds]), 1000);
    usage.add("acme", 0.5);
    usage.flush(true);
    expect(writes).toEqual([["acme", 0.5]]);
    usage.add("acme", 0.25); // a job that finished during the shutdown
    expect(writes).toEqual([
      ["acme", 0.5],
      ["acme", 0.25],
    ]);
    vi.advanceTimersByTime(5000);
    expect(writes).toHaveLength(2);
  });

  it("refuses a flush interval that is not positive", () => {
    expect(() => createUsageCoalescer(() => {}, 0)).toThrow(RangeError);
  });
});
