/** A demo user's ground truth (models/<version>/world/users.json). */
export interface DemoUser {
  id: string;
  w: number[];
  q: number;
  beta: number;
  class?: string;
  split?: string;
}

/** The demo world's exact verifier: P(like | u, e) = σ(β·(cos(w_u, e) − q_u)). */
export function oracleLikeProbability(user: DemoUser, e: ArrayLike<number>): number {
  let dot = 0;
  let ww = 0;
  let ee = 0;
  for (let i = 0; i < user.w.length; i++) {
    const w = user.w[i]!;
    const x = e[i]!;
    dot += w * x;
    ww += w * w;
    ee += x * x;
  }
  const cos = dot / (Math.sqrt(ww) * Math.sqrt(ee) || 1);
  return 1 / (1 + Math.exp(-user.beta * (cos - user.q)));
}
