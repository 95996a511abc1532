import { describe, expect, it } from "vitest";
import { decoderWorkerConfigSchema } from "./config.js";

describe("decoder worker config", () => {
  it("writes PNGs at zlib level 6 and lean PUTs unless told otherwise", () => {
    const c = decoderWorkerConfigSchema.parse({});
    expect(c.PNG_LEVEL).toBe(6);
    expect(c.S3_LEAN_PUTS).toBe(true);
    expect(decoderWorkerConfigSchema.parse({ PNG_LEVEL: "9", S3_LEAN_PUTS: "false" })).toMatchObject({ PNG_LEVEL: 9, S3_LEAN_PUTS: false });
  });
  it("refuses a PNG level zlib does not have", () => {
    expect(() => decoderWorkerConfigSchema.parse({ PNG_LEVEL: "10" })).toThrow(/PNG_LEVEL/);
    expect(() => decoderWorkerConfigSchema.parse({ PNG_LEVEL: "fast" })).toThrow(/PNG_LEVEL/);
  });
});
