/**
 * The paper's personalization test (REBECA §5). Generated items carry the user they were made
 * for; `score(u, i)` is a verifier's P(like | user u, item i). Per user, m_u is the mean score of
 * that user's items; the statistic is T = median_u m_u. Under the null, user labels are
 * exchangeable across items: labels are shuffled across all items (group sizes kept) B times and
 * p = (1 + #{T_perm ≥ T_obs}) / (1 + B).
 */
export interface PersonalizationInput {
  /** Number of users; labels are 0..users-1. */
  users: number;
  /** labels[i] = the user item i was generated for. */
  labels: Int32Array | number[];
  /** score(u, i) = P(like | user u, item i), for every user and item. */
  score: (user: number, item: number) => number;
}

export interface PersonalizationResult {
  /** T = median over users of m_u. */
  statistic: number;
  /** p = (1 + #{T_perm ≥ T}) / (1 + B). */
  p: number;
  permutations: number;
  /** Null distribution of T (for plots). */
  nullStatistics: number[];
  /** m_u per user. */
  perUser: number[];
  /** Mean score of items for their own user. */
  own: number;
  /** Mean score of items for the other users. */
  others: number;
  /** own − others. */
  effect: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A small seeded generator (mulberry32) so a report is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function statisticOf(users: number, labels: ArrayLike<number>, matrix: Float64Array, items: number): { t: number; perUser: number[] } {
  const sums = new Float64Array(users);
  const counts = new Int32Array(users);
  for (let i = 0; i < items; i++) {
    const u = labels[i]!;
    sums[u] = sums[u]! + matrix[u * items + i]!;
    counts[u] = counts[u]! + 1;
  }
  const perUser: number[] = [];
  for (let u = 0; u < users; u++) if (counts[u]! > 0) perUser.push(sums[u]! / counts[u]!);
  return { t: median(perUser), perUser };
}

/** Runs the permutation test with `permutations` shuffles (the paper: 1000). */
export function personalizationTest(input: PersonalizationInput, permutations = 1000, seed = 1): PersonalizationResult {
  const items = input.labels.length;
  const users = input.users;
  // Scores are computed once; each permutation then costs O(items).
  const matrix = new Float64Array(users * items);
  for (let u = 0; u < users; u++) for (let i = 0; i < items; i++) matrix[u * items + i] = input.score(u, i);

  const observed = statisticOf(users, input.labels, matrix, items);
  let own = 0;
  let others = 0;
  for (let i = 0; i < items; i++) {
    const label = input.labels[i]!;
    let rest = 0;
    for (let u = 0; u < users; u++) if (u !== label) rest += matrix[u * items + i]!;
    own += matrix[label * items + i]!;
    others += users > 1 ? rest / (users - 1) : 0;
  }
  own /= items;
  others /= items;

  const random = seededRandom(seed);
  const shuffled = Int32Array.from(input.labels);
  const nullStatistics: number[] = [];
  let atLeast = 0;
  for (let b = 0; b < permutations; b++) {
    for (let i = items - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const tmp = shuffled[i]!;
      shuffled[i] = shuffled[j]!;
      shuffled[j] = tmp;
    }
    const t = statisticOf(users, shuffled, matrix, items).t;
    nullStatistics.push(t);
    if (t >= observed.t) atLeast++;
  }
  return {
    statistic: observed.t,
    p: (1 + atLeast) / (1 + permutations),
    permutations,
    nullStatistics,
    perUser: observed.perUser,
    own,
    others,
    effect: own - others,
  };
}
