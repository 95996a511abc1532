import { describe, expect, it } from "vitest";
import { bits, fmix32, normalVector } from "./rng.js";

// Independent reference on BigInt, written straight from docs/model-format.md.
const M = (1n << 32n) - 1n;
const imul = (a: bigint, b: bigint): bigint => (a * b) & M;
function fmixRef(h: bigint): bigint {
  h ^= h >> 16n;
  h = imul(h, 0x85ebca6bn);
  h ^= h >> 13n;
  h = imul(h, 0xc2b2ae35n);
  h ^= h >> 16n;
  return h;
}
function bitsRef(seed: bigint, stream: bigint, i: bigint): bigint {
  const k1 = fmixRef(seed ^ 0x9e3779b9n);
  const k2 = fmixRef((k1 + imul(stream, 0x85ebca6bn)) & M);
  return fmixRef((k2 + imul(i, 0xc2b2ae35n) + 0x27d4eb2fn) & M);
}

describe("fmix32", () => {
  it("matches known MurmurHash3 finalizer values", () => {
    expect(fmix32(0)).toBe(0);
    // Hand-checked against the BigInt reference, and against smhasher's fmix32(1) = 0x514e28b7.
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(fmix32(0xffffffff)).toBe(Number(fmixRef(0xffffffffn)));
  });
  it("agrees with a BigInt reference on many inputs", () => {
    for (let i = 0; i < 2000; i++) {
      const h = (Math.imul(i, 0x9e3779b1) ^ (i << 7)) >>> 0;
      expect(fmix32(h)).toBe(Number(fmixRef(BigInt(h))));
    }
  });
});

describe("bits", () => {
  it("agrees with a BigInt reference, including large seeds, streams and indices", () => {
    const seeds = [0, 1, 2, 42, 0x9e3779b9, 0xffffffff];
    const streams = [0, 1, 2, 999, 1000, 0xffffffff];
    const idx = [0, 1, 63, 64, 1_000_000, 0xffffffff];
    for (const s of seeds) for (const k of streams) for (const i of idx) expect(bits(s, k, i)).toBe(Number(bitsRef(BigInt(s), BigInt(k), BigInt(i))));
  });
  it("matches values computed independently in Python", () => {
    expect([0, 1, 2, 3].map((i) => bits(1, 0, i))).toEqual([0xe3ff82b1, 0x465d0d7f, 0x6e702ac4, 0xf091a978]);
    expect([0, 1].map((i) => bits(0xffffffff, 7, i))).toEqual([0x17b18f97, 0xb3b85266]);
  });
  it("is a uint32", () => {
    for (let i = 0; i < 100; i++) {
      const b = bits(7, 3, i);
      expect(Number.isInteger(b) && b >= 0 && b < 2 ** 32).toBe(true);
    }
  });
});

describe("normalVector", () => {
  it("is Box–Muller on bits pairs, in float64", () => {
    const z = normalVector(1, 0, 5);
    for (let j = 0; j < 5; j += 2) {
      const u1 = (Number(bitsRef(1n, 0n, BigInt(j))) + 1) / 2 ** 32;
      const u2 = Number(bitsRef(1n, 0n, BigInt(j + 1))) / 2 ** 32;
      const r = Math.sqrt(-2 * Math.log(u1));
      expect(z[j]).toBe(r * Math.cos(2 * Math.PI * u2));
      if (j + 1 < 5) expect(z[j + 1]).toBe(r * Math.sin(2 * Math.PI * u2));
    }
  });
  it("matches Python math (seed 1, stream 0) to the last bit or within 1 ulp", () => {
    const py = [-0.07487082948630987, 0.47547319790192516, 1.2048119633867898, -0.4794493748677712];
    const z = normalVector(1, 0, 4);
    py.forEach((v, i) => expect(Math.abs(z[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -52));
  });
  it("odd lengths drop the last sine and keep the prefix", () => {
    const a = normalVector(9, 4, 7);
    const b = normalVector(9, 4, 8);
    expect(Array.from(a)).toEqual(Array.from(b.subarray(0, 7)));
  });
  it("depends only on (seed, stream): writing at an offset changes nothing", () => {
    const out = new Float64Array(20);
    normalVector(3, 2, 8, out, 10);
    expect(Array.from(out.subarray(10, 18))).toEqual(Array.from(normalVector(3, 2, 8)));
    expect(Array.from(normalVector(3, 1, 8))).not.toEqual(Array.from(normalVector(3, 2, 8)));
  });
  it("looks standard normal", () => {
    const z = normalVector(123, 0, 100_000);
    let m = 0;
    let v = 0;
    for (const x of z) m += x;
    m /= z.length;
    for (const x of z) v += (x - m) ** 2;
    v /= z.length;
    expect(Math.abs(m)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.02);
  });
  it("rejects non-uint32 seeds", () => {
    expect(() => normalVector(-1, 0, 2)).toThrow(/uint32/);
    expect(() => normalVector(2 ** 32, 0, 2)).toThrow(/uint32/);
    expect(() => normalVector(1.5, 0, 2)).toThrow(/uint32/);
  });
});
