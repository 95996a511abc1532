import { describe, expect, it } from "vitest";
import { createInTurn } from "./in-turn.js";

describe("createInTurn", () => {
  it("starts each piece of work only after the previous one settled, in order, failures included", async () => {
    const inTurn = createInTurn();
    const log: string[] = [];
    let finishFirst!: () => void;
    const first = inTurn(async () => {
      log.push("a start");
      await new Promise<void>((r) => (finishFirst = r));
      log.push("a end");
      return "a";
    });
    const second = inTurn(async () => {
      log.push("b start");
      throw new Error("b failed");
    });
    const third = inTurn(async () => (log.push("c start"), "c"));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(["a start"]); // b and c wait for a
    finishFirst();
    expect(await first).toBe("a");
    await expect(second).rejects.toThrow("b failed");
    expect(await third).toBe("c"); // a failure does not stop the line
    expect(log).toEqual(["a start", "a end", "b start", "c start"]);
  });
});
