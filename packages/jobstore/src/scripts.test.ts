import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * Redis Cluster routes a script by the keys it declares and refuses (or misroutes) one that
 * touches others, so every key a script reads or writes must come in KEYS, never in ARGV. Every
 * command these scripts call takes a key as its first argument; none may take it from ARGV.
 */
describe("Lua scripts", () => {
  for (const file of ["store.ts", "batches.ts"]) {
    it(`in ${file} take every key they touch from KEYS`, () => {
      const source = readFileSync(new URL(`./${file}`, import.meta.url), "utf8");
      const calls = [...source.matchAll(/redis\.call\('([A-Z]+)',\s*([^,)]+)/g)].map((m) => ({ command: m[1], key: m[2]!.trim() }));
      expect(calls.length).toBeGreaterThan(3);
      expect(calls.filter((c) => !c.key.startsWith("KEYS[")).map((c) => `${c.command} ${c.key}`)).toEqual([]);
    });
  }
});
