/**
 * Pure pieces of an erasure: which result lines and embedding rows belong to the erased users.
 * Result lines are the JSON Lines of shard results and batch manifests (`UserResult`).
 */
import type { UserResult } from "@rebeca/contracts";

/** The user id of a result line; "" for a blank line. @throws SyntaxError on a line that is not JSON. */
function userOf(line: string): string {
  if (line.trim() === "") return "";
  return String((JSON.parse(line) as Partial<UserResult>).user_id ?? "");
}

/** Whether a manifest line goes: one of the erased users', or an erased-line marker from a shard result. */
const dropped = (line: string, users: ReadonlySet<string>) => users.has(userOf(line)) || line.includes('"erased":true');

/**
 * A result manifest without the erased users' lines (the object is rewritten, not masked), over
 * an object of any size as it streams: chunks in, the kept lines out. `count` is told of each
 * removed user line (erased-line markers copied from shard results are dropped uncounted).
 */
export async function* streamWithoutUsers(chunks: AsyncIterable<Uint8Array>, users: ReadonlySet<string>, count: () => void): AsyncGenerator<Uint8Array> {
  const decoder = new TextDecoder();
  let rest = "";
  const keep = (lines: string[]) => {
    const kept = lines.filter((line) => {
      if (line === "") return false;
      if (!dropped(line, users)) return true;
      if (users.has(userOf(line))) count();
      return false;
    });
    return kept.length > 0 ? Buffer.from(kept.join("\n") + "\n") : null;
  };
  for await (const chunk of chunks) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop()!;
    const out = keep(lines);
    if (out) yield out;
  }
  const out = keep([rest + decoder.decode()]);
  if (out) yield out;
}

/**
 * A shard result line left where an erased user's line was: the user's id and outputs are gone,
 * and it keeps the number of embedding rows the user had, so the rows of the users after it can
 * still be found in the shard's embeddings object (one row per image of each served user, in line
 * order) by a later erasure. Client-facing manifests drop it.
 */
export interface ErasedLine {
  position: number;
  erased: true;
  rows: number;
}

type ShardLine = UserResult | ErasedLine;
const isErased = (line: ShardLine): line is ErasedLine => (line as ErasedLine).erased === true;

/**
 * A shard's result lines with the erased users' lines replaced by {@link ErasedLine}s, and the
 * embedding rows those users had.
 * @returns the new text, how many lines were replaced, the half-open row ranges to zero, how
 *   many rows the shard's embeddings object holds, and the images each erased user had (by position)
 */
export function eraseShardLines(
  text: string,
  users: ReadonlySet<string>,
): { text: string; removed: number; ranges: [number, number][]; rows: number; images: { position: number; count: number }[] } {
  const lines = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ShardLine);
  const ranges: [number, number][] = [];
  let row = 0;
  let removed = 0;
  const images: { position: number; count: number }[] = [];
  const out = lines.map((line): ShardLine => {
    const rows = isErased(line) ? line.rows : line.error || !line.images ? 0 : line.images.length;
    const from = row;
    row += rows;
    if (isErased(line) || !users.has(line.user_id)) return line;
    removed++;
    if (rows > 0) ranges.push([from, row]);
    images.push({ position: line.position, count: line.images?.length ?? 0 });
    return { position: line.position, erased: true, rows };
  });
  return { text: out.map((l) => JSON.stringify(l)).join("\n") + (out.length > 0 ? "\n" : ""), removed, ranges, rows: row, images };
}

/**
 * Zeroes the rows in `ranges` of a row-major [rows, dim] array in place.
 * @returns how many rows held anything before (0 on a repeat: the erasure counts real changes)
 */
export function zeroRows(values: Float32Array, rows: number, ranges: readonly [number, number][]): number {
  if (rows === 0) return 0;
  if (values.length % rows !== 0) throw new RangeError(`${values.length} values do not make ${rows} rows`);
  const dim = values.length / rows;
  let changed = 0;
  for (const [from, to] of ranges) {
    for (let r = from; r < to; r++) {
      const row = values.subarray(r * dim, (r + 1) * dim);
      if (row.some((v) => v !== 0)) changed++;
      row.fill(0);
    }
  }
  return changed;
}
