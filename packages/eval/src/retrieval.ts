/**
 * Retrieval metrics (REBECA §5): each generated embedding retrieves its k nearest items (cosine)
 * from its user's rated pool (liked ∪ disliked catalogue items). Precision@k is the share of
 * retrieved items the user liked, averaged over the user's generated items; recall@k is the share
 * of the user's liked items retrieved by at least one of them. Higher guidance concentrates the
 * generated items near the user's mode: precision rises, recall (coverage) falls.
 */

/** Cosine similarity of a[ao..ao+d) and b[bo..bo+d). */
export function cosine(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, d: number): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let j = 0; j < d; j++) {
    const x = a[ao + j]!;
    const y = b[bo + j]!;
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  const n = Math.sqrt(aa) * Math.sqrt(bb);
  return n > 0 ? dot / n : 0;
}

export interface RetrievalInput {
  /** The user's generated embeddings [n, dim]. */
  generated: ArrayLike<number>;
  /** Catalogue embeddings [items, dim]. */
  catalogue: ArrayLike<number>;
  dim: number;
  /** Catalogue indices the user liked / disliked (their rated pool). */
  liked: readonly number[];
  disliked: readonly number[];
  k: number;
}

export interface RetrievalResult {
  k: number;
  precision: number;
  recall: number;
  f1: number;
}

/** F1 of a precision and a recall (0 when both are 0). */
export function f1Score(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

/** Precision and recall@k for one user's generated items against their rated pool. */
export function retrievalAtK(input: RetrievalInput): RetrievalResult {
  const { generated, catalogue, dim, liked, disliked } = input;
  const pool = [...liked, ...disliked];
  const likedSet = new Set(liked);
  const n = Math.floor(generated.length / dim);
  const k = Math.min(input.k, pool.length);
  if (n === 0 || k === 0) return { k: input.k, precision: 0, recall: 0, f1: 0 };
  const found = new Set<number>();
  let precision = 0;
  for (let g = 0; g < n; g++) {
    const ranked = pool
      .map((item) => ({ item, s: cosine(generated, g * dim, catalogue, item * dim, dim) }))
      // Ties broken by catalogue index so results never depend on the sort's stability.
      .sort((a, b) => b.s - a.s || a.item - b.item)
      .slice(0, k);
    let hits = 0;
    for (const r of ranked) {
      if (likedSet.has(r.item)) {
        hits++;
        found.add(r.item);
      }
    }
    precision += hits / k;
  }
  precision /= n;
  const recall = liked.length > 0 ? found.size / liked.length : 0;
  return { k: input.k, precision, recall, f1: f1Score(precision, recall) };
}

/** Mean pairwise cosine distance (1 − cos) of a set of embeddings [n, dim]; 0 for fewer than 2. */
export function diversity(embeddings: ArrayLike<number>, dim: number): number {
  const n = Math.floor(embeddings.length / dim);
  if (n < 2) return 0;
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      total += 1 - cosine(embeddings, i * dim, embeddings, j * dim, dim);
      pairs++;
    }
  }
  return total / pairs;
}
