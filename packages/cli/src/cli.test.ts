import { describe, expect, it } from "vitest";
import { intFlag, labels, parseArgs, UsageError } from "./args.js";
import { formatEta, renderProgress } from "./progress.js";

describe("parseArgs", () => {
  it("parses a submit with repeated labels", () => {
    const cmd = parseArgs(["submit", "--file", "ids.txt", "--request-id", "r1", "--images", "4", "--label", "a=b", "--label", "c=d=e", "--no-watch"]);
    expect(cmd.name).toBe("submit");
    expect(intFlag(cmd, "images", 1)).toBe(4);
    expect(labels(cmd)).toEqual({ a: "b", c: "d=e" });
    expect(cmd.flags.get("no-watch")).toEqual(["true"]);
  });
  it.each([
    [[], /no command/],
    [["launch"], /unknown command/],
    [["submit", "--request-id", "r"], /exactly one of --file or --manifest/],
    [["submit", "--file", "f"], /--request-id is required/],
    [["watch"], /expected 1 argument/],
    [["results", "b", "--colour", "x"], /unknown option --colour/],
    [["results", "b", "--out"], /needs a value/],
    [["eval"], /at least one argument/],
    [["eval", "b1", "--verifier", "magic"], /oracle or learned/],
    [["eval", "b1", "b2", "--label", "only-one"], /one --label per batch/],
    [["submit", "--file", "f", "--request-id", "r", "--sampler", "euler"], /--sampler must be one of ddim, ddpm, dpmpp_2m, dpmpp_2m_sde/],
    [["submit", "--file", "f", "--request-id", "r", "--spacing", "karras"], /--spacing must be one of linspace, leading, trailing/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseArgs(argv as string[])).toThrow(UsageError);
    expect(() => parseArgs(argv as string[])).toThrow(message);
  });
  it("parses an eval of several batches with labels, a verifier and --upload", () => {
    const cmd = parseArgs(["eval", "b1", "b2", "--label", "ddpm", "--label", "ddim", "--verifier", "learned", "--permutations", "200", "--upload"]);
    expect(cmd.positional).toEqual(["b1", "b2"]);
    expect(cmd.flags.get("label")).toEqual(["ddpm", "ddim"]);
    expect(intFlag(cmd, "permutations", 1000)).toBe(200);
    expect(cmd.flags.has("upload")).toBe(true);
  });
  it("takes the TLS options on every command that calls the gateway", () => {
    const cmd = parseArgs(["watch", "batch_1", "--tls", "--ca", "ca.pem", "--cert", "c.pem", "--key", "c.key"]);
    expect(cmd.flags.get("tls")).toEqual(["true"]);
    expect([cmd.flags.get("ca"), cmd.flags.get("cert"), cmd.flags.get("key")]).toEqual([["ca.pem"], ["c.pem"], ["c.key"]]);
    expect(parseArgs(["batches", "--ca", "ca.pem"]).flags.get("ca")).toEqual(["ca.pem"]);
    expect(() => parseArgs(["batches", "--ca"])).toThrow(UsageError);
  });

  it("refuses a non-integer number and a label without =", () => {
    expect(() => intFlag(parseArgs(["submit", "--file", "f", "--request-id", "r", "--images", "two"]), "images", 1)).toThrow(/integer/);
    expect(() => labels(parseArgs(["submit", "--file", "f", "--request-id", "r", "--label", "nokey"]))).toThrow(/key=value/);
  });
});

describe("progress", () => {
  it("renders a bar with counts and percent", () => {
    expect(renderProgress("users", 25, 100, "eta 3m", 10)).toBe("users [###-------] 25/100 25.0% eta 3m");
    expect(renderProgress("users", 0, 0, "", 4)).toBe("users [----] 0/0 0.0%");
  });
  it("formats an ETA", () => {
    expect(formatEta(42)).toBe("42s");
    expect(formatEta(185)).toBe("3m05s");
    expect(formatEta(3720)).toBe("1h02m");
    expect(formatEta(0)).toBe("");
  });
});
