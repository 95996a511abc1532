/*
 * The learned verifier exported by the training tools (world/verifier.onnx), run by onnxruntime-node
 * as `rebeca eval` and the monitor run it: parity with the torch model's P(like), and it separates
 * a user's liked catalogue items from their disliked ones.
 */
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { chooseVerifier, learnedVerifier, loadDemoWorld } from "./served.js";

const WORLD = fileURLToPath(new URL("../../../models/demo-v1/world/", import.meta.url));
const meta = JSON.parse(readFileSync(`${WORLD}verifier.json`, "utf8")) as {
  parity: { users: string[]; items: string[]; p_like: number[][] };
  held_out_auc: number;
};

describe("learned verifier (world/verifier.onnx)", async () => {
  const world = await loadDemoWorld(WORLD);
  const verifier = await learnedVerifier(world);
  const pixelsOf = (items: number[]) => {
    const out = new Float32Array(items.length * 784);
    items.forEach((item, k) =>
      out.set(
        Float32Array.from(world.pixels.subarray(item * 784, (item + 1) * 784), (v) => v / 255),
        k * 784,
      ),
    );
    return out;
  };

  it("matches the torch model's P(like) on the parity items (≤ 1e-5)", async () => {
    const items = meta.parity.items.map((id) => world.itemIds.indexOf(id));
    const m = await verifier.scoreMatrix(meta.parity.users, new Float32Array(0), pixelsOf(items), items.length);
    meta.parity.users.forEach((_, u) => items.forEach((_, i) => expect(Math.abs(m[u * items.length + i]! - meta.parity.p_like[u]![i]!)).toBeLessThan(1e-5)));
    expect(verifier.knows(meta.parity.users[0]!)).toBe(true);
    expect(verifier.knows("nobody")).toBe(false);
  });

  it("scores users' liked catalogue items above their disliked ones (AUC over 20 users > 0.8)", async () => {
    const users = world.verifierUsers!.slice(0, 20);
    let pairs = 0;
    let wins = 0;
    for (const id of users) {
      const pool = world.pools.get(id)!;
      const items = [...pool.liked.slice(0, 10), ...pool.disliked.slice(0, 10)];
      const m = await verifier.scoreMatrix([id], new Float32Array(0), pixelsOf(items), items.length);
      const liked = Math.min(10, pool.liked.length);
      for (let a = 0; a < liked; a++)
        for (let b = liked; b < items.length; b++) {
          pairs++;
          wins += m[a]! > m[b]! ? 1 : m[a] === m[b] ? 0.5 : 0;
        }
    }
    expect(wins / pairs).toBeGreaterThan(0.8);
    expect(meta.held_out_auc).toBeGreaterThan(0.85);
  });

  it("is chosen for users the oracle does not know; the oracle for demo users", async () => {
    // A world for real users: only the learned verifier, no oracle, no catalogue.
    const dir = mkdtempSync(join(tmpdir(), "rebeca-world-"));
    for (const f of ["verifier.onnx", "verifier_users.txt"]) copyFileSync(`${WORLD}${f}`, join(dir, f));
    const real = await loadDemoWorld(dir);
    expect(real.users.size).toBe(0);
    expect((await chooseVerifier(real, [meta.parity.users[0]!])).name).toBe("learned");
    await expect(chooseVerifier(real, ["nobody"])).rejects.toThrow(/no row/);
    expect((await chooseVerifier(world, [meta.parity.users[0]!])).name).toBe("oracle");
    expect((await chooseVerifier(world, [meta.parity.users[0]!], "learned")).name).toBe("learned");
  });
});
