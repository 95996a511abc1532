/** Redis stream ids ("<ms>-<seq>") compared numerically; "0" counts as "0-0". */
export function compareEventIds(a: string, b: string): number {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = BigInt(am!) - BigInt(bm!);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

export const EVENT_ID = /^\d{1,20}(-\d{1,20})?$/;
