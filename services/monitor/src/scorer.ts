/**
 * Scores one sampled user's served images: re-encodes the PNGs with the model's image encoder and
 * asks the verifier for P(like) for the user and for reference users (the baseline). Models are
 * loaded once per version, on first use, from where `locate` says (model-dirs.ts).
 */
import { decodePng, learnedVerifier, loadDemoWorld, loadImageEncoder, oracleVerifier, type LoadedEncoder, type Verifier } from "@rebeca/eval/served";
import { referenceUsers, type ScoreTask } from "./sampling.js";

export interface UserScore {
  verifier: "oracle" | "learned";
  /** P(like | user, image) per image. */
  own: number[];
  /** Mean P(like | reference user, image) per image. */
  others: number[];
}

export class SkipError extends Error {
  constructor(
    readonly reason: "unknown_user" | "no_model",
    message: string,
  ) {
    super(message);
  }
}

interface ModelTools {
  encoder: LoadedEncoder;
  oracle?: { verifier: Verifier; users: string[] };
  learned?: { verifier: Verifier; users: string[] };
}

export interface Scorer {
  score(task: ScoreTask): Promise<UserScore>;
}

export function createScorer(deps: {
  /** The version's directory (its `decoder/` holds the image encoder) and the world whose verifiers judge it. */
  locate: (version: string) => Promise<{ modelDir: string; worldDir: string }>;
  references: number;
  read: (uri: string) => Promise<Uint8Array>;
}): Scorer {
  const models = new Map<string, Promise<ModelTools>>();

  async function load(version: string): Promise<ModelTools> {
    if (!/^[A-Za-z0-9._-]+$/.test(version)) throw new SkipError("no_model", `bad model version ${JSON.stringify(version)}`);
    const { modelDir, worldDir } = await deps.locate(version);
    const encoder = await loadImageEncoder(modelDir).catch((err: Error) => {
      throw new SkipError("no_model", `${version}: ${err.message}`);
    });
    const world = await loadDemoWorld(worldDir).catch(() => undefined);
    const tools: ModelTools = { encoder };
    if (world && world.users.size > 0) tools.oracle = { verifier: oracleVerifier(world), users: [...world.users.keys()] };
    if (world?.verifierUsers) tools.learned = { verifier: await learnedVerifier(world), users: world.verifierUsers };
    if (!tools.oracle && !tools.learned) throw new SkipError("no_model", `${version} has no verifier (${worldDir}/users.json or verifier.onnx)`);
    return tools;
  }

  return {
    async score(task) {
      let tools = models.get(task.modelVersion);
      if (!tools) {
        tools = load(task.modelVersion);
        models.set(task.modelVersion, tools);
        // A failed load is retried on a later sample (the model may be deployed later).
        tools.catch(() => models.delete(task.modelVersion));
      }
      const t = await tools;
      // The exact oracle for demo users; the learned verifier for real ones.
      const pick = t.oracle?.verifier.knows(task.userId) ? t.oracle : t.learned?.verifier.knows(task.userId) ? t.learned : undefined;
      if (!pick) throw new SkipError("unknown_user", `no verifier knows user ${task.userId}`);
      const { encoder } = t;
      const per = encoder.channels * encoder.height * encoder.width;
      const n = task.imageUris.length;
      const pixels = new Float32Array(n * per);
      const pngs = await Promise.all(task.imageUris.map((uri) => deps.read(uri)));
      pngs.forEach((png, i) => pixels.set(decodePng(png, encoder.channels).pixels, i * per));
      const embeddings = await encoder.encode(pixels, n);
      const refs = referenceUsers(task.userId, pick.users, deps.references);
      const users = [task.userId, ...refs];
      const m = await pick.verifier.scoreMatrix(users, embeddings, pixels, n);
      const own = Array.from({ length: n }, (_, i) => m[i]!);
      const others = Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let u = 1; u < users.length; u++) s += m[u * n + i]!;
        return refs.length ? s / refs.length : 0;
      });
      return { verifier: pick.verifier.name, own, others };
    },
  };
}
