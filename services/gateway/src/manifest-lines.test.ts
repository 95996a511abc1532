import { describe, expect, it } from "vitest";
import { idChunks, LineTooLongError, splitLines } from "./manifest-lines.js";

const enc = (s: string) => new TextEncoder().encode(s);

async function* from(parts: Uint8Array[]) {
  for (const p of parts) yield p;
}
async function all<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}
const lines = async (parts: Uint8Array[], max = 4096) => (await all(splitLines(from(parts), max))).flat();

/** Every way of cutting `bytes` into two or three pieces. */
function cuts(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) out.push([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
  }
  return out;
}

describe("splitLines", () => {
  it("trims lines, drops blank ones, takes CRLF and a final line without newline", async () => {
    expect(await lines([enc("a\r\n\r\n  b \n\n\t\nc")])).toEqual(["a", "b", "c"]);
    expect(await lines([enc("")])).toEqual([]);
    expect(await lines([])).toEqual([]);
    expect(await lines([enc("\n\n\r\n")])).toEqual([]);
  });

  it("gives the same lines however the bytes are cut, UTF-8 characters and CRLF included", async () => {
    const bytes = enc("u1\r\nüser-é\n\r\n😀x\nlast");
    for (const parts of cuts(bytes)) expect(await lines(parts)).toEqual(["u1", "üser-é", "😀x", "last"]);
  });

  it("keeps duplicates (intake decides about them) in order", async () => {
    expect(await lines([enc("a\nb\na\n")])).toEqual(["a", "b", "a"]);
  });

  it("refuses a line longer than the bound, also one that never ends", async () => {
    await expect(lines([enc("ok\n" + "x".repeat(20) + "\n")], 10)).rejects.toThrow(LineTooLongError);
    // No newline at all: caught while the partial line grows, not after the whole object.
    const endless = (async function* () {
      for (let i = 0; i < 1000; i++) yield enc("y".repeat(100));
      throw new Error("read past the bound");
    })();
    const err = await all(splitLines(endless, 1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LineTooLongError);
    expect((err as LineTooLongError).line).toBe(1);
  });

  it("yields each chunk's lines as the chunk arrives, holding no more than one chunk and one partial line", async () => {
    let pulled = 0;
    const source = (async function* () {
      for (let i = 0; i < 50; i++) {
        pulled++;
        yield enc(`id-${i}\nhalf-${i}\n`);
      }
    })();
    const it = splitLines(source, 4096)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toEqual(["id-0", "half-0"]);
    // One chunk read for the first lines, not the whole source.
    expect(pulled).toBe(1);
    await it.return(undefined);
  });
});

describe("idChunks", () => {
  async function* groups(n: number, per: number) {
    for (let i = 0; i < n; i += per) yield Array.from({ length: Math.min(per, n - i) }, (_, k) => `u${i + k}`);
  }

  it("regroups into chunks of the size, offsets running on, only the final one last", async () => {
    const chunks = await all(idChunks(groups(25, 7), 10));
    expect(chunks.map((c) => [c.offset, c.userIds.length, c.last])).toEqual([
      [0, 10, false],
      [10, 10, false],
      [20, 5, true],
    ]);
    expect(chunks.flatMap((c) => c.userIds)).toEqual(Array.from({ length: 25 }, (_, i) => `u${i}`));
  });

  it("marks an exact multiple's final full chunk last, with no empty chunk after it", async () => {
    const chunks = await all(idChunks(groups(20, 3), 10));
    expect(chunks.map((c) => [c.offset, c.userIds.length, c.last])).toEqual([
      [0, 10, false],
      [10, 10, true],
    ]);
  });

  it("gives an empty manifest one empty last chunk", async () => {
    expect(await all(idChunks(groups(0, 1), 10))).toEqual([{ offset: 0, userIds: [], last: true }]);
  });
});
