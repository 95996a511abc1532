// The runtime schedulers against the trajectories training/rebeca_train/latent_schedulers.py computed
// (committed in the tiny latent fixture's parity.json).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLatentScheduler, type LatentSchedulerName } from "./latent-schedulers.js";

const FIXTURE = fileURLToPath(new URL("../test-fixtures/latent-tiny/", import.meta.url));
const manifest = JSON.parse(readFileSync(FIXTURE + "manifest.json", "utf8")) as { scheduler: { alphas_cumprod: number[] } };
const parity = JSON.parse(readFileSync(FIXTURE + "parity.json", "utf8")) as {
  schedulers: {
    x_init: number[];
    cases: { scheduler: LatentSchedulerName; steps: number; timesteps: number[]; init_sigma: number; final: number[]; sigmas?: number[] }[];
  };
};
const alphas = Float64Array.from(manifest.scheduler.alphas_cumprod);

/** The stand-in model of the Python reference (`toy_eps`). */
const toyEps = (x: number, t: number): number => Math.tanh(x) * (0.5 + t / 2000) + 0.01 * Math.cos(x * 3);

function run(name: LatentSchedulerName, steps: number, xInit: number[]): Float64Array {
  const s = createLatentScheduler(name, alphas, steps);
  const x = Float64Array.from(xInit, (v) => v * s.initSigma);
  s.timesteps.forEach((t, i) => {
    const scale = s.inputScale(i);
    s.step(
      Float64Array.from(x, (v) => toyEps(v * scale, t)),
      i,
      x,
    );
  });
  return x;
}

const maxRelDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return m;
};

describe("latent schedulers vs the Python reference", () => {
  it("covers every scheduler", () => {
    expect(new Set(parity.schedulers.cases.map((c) => c.scheduler))).toEqual(new Set(["ddim", "euler", "pndm"]));
  });

  for (const c of parity.schedulers.cases) {
    it(`${c.scheduler}, ${c.steps} steps: timesteps, σ and the trajectory agree`, () => {
      const s = createLatentScheduler(c.scheduler, alphas, c.steps);
      expect(s.timesteps.length).toBe(c.timesteps.length);
      expect(maxRelDiff(s.timesteps, c.timesteps)).toBeLessThan(1e-12);
      expect(Math.abs(s.initSigma - c.init_sigma)).toBeLessThan(1e-12 * c.init_sigma);
      if (c.sigmas) expect(maxRelDiff(s.sigmas!, c.sigmas)).toBeLessThan(1e-12);
      expect(maxRelDiff(run(c.scheduler, c.steps, parity.schedulers.x_init), c.final)).toBeLessThan(1e-10);
    });
  }
});

describe("latent scheduler structure", () => {
  it("SD 1.5 timesteps: DDIM leading + offset, PNDM repeats the second, Euler linspace", () => {
    expect(createLatentScheduler("ddim", alphas, 50).timesteps.slice(0, 3)).toEqual([981, 961, 941]);
    const p = createLatentScheduler("pndm", alphas, 50).timesteps;
    expect(p.length).toBe(51);
    expect(p.slice(0, 4)).toEqual([981, 961, 961, 941]);
    expect(p[p.length - 1]).toBe(1);
    expect(createLatentScheduler("euler", alphas, 10).timesteps[0]).toBe(999);
  });

  it("a model that knows the noise makes DDIM land on x0 (up to the final ᾱ[0])", () => {
    const x0 = [-1, -0.25, 0.5, 1];
    const noise = [0.3, -1.2, 0.7, 0.05];
    const s = createLatentScheduler("ddim", alphas, 10);
    const a0 = alphas[s.timesteps[0]!]!;
    const x = Float64Array.from(x0, (v, k) => Math.sqrt(a0) * v + Math.sqrt(1 - a0) * noise[k]!);
    s.timesteps.forEach((_, i) => s.step(Float64Array.from(noise), i, x));
    x0.forEach((v, k) => expect(x[k]).toBeCloseTo(Math.sqrt(alphas[0]!) * v + Math.sqrt(1 - alphas[0]!) * noise[k]!, 12));
  });

  it("refuses bad arguments with a message", () => {
    expect(() => createLatentScheduler("ddim", alphas, 0)).toThrow(/steps must be/);
    expect(() => createLatentScheduler("pndm", alphas, 1)).toThrow(/at least 2/);
    expect(() => createLatentScheduler("heun" as LatentSchedulerName, alphas, 10)).toThrow(/unknown scheduler "heun"/);
  });
});
