/**
 * `read(0..count-1)` as an ordered stream, with up to `ahead` reads in flight. A failed read fails
 * the stream; reads already started are left to settle (their results are dropped).
 */
export async function* inOrder<T>(count: number, ahead: number, read: (i: number) => Promise<T>): AsyncGenerator<T> {
  const window: Promise<T>[] = [];
  let next = 0;
  const fill = () => {
    while (next < count && window.length < ahead) {
      const p = read(next++);
      p.catch(() => {}); // awaited in order below; marked handled so an early failure is not "unhandled"
      window.push(p);
    }
  };
  fill();
  while (window.length > 0) {
    const value = await window.shift()!;
    fill();
    yield value;
  }
}
