/**
 * Runs async work one at a time, in the order it was handed over: each starts when the previous
 * one has settled (fulfilled or rejected). A sampler thread runs its calls so (sampler-thread.ts).
 */
export function createInTurn(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const turn = last.then(work, work);
    last = turn.catch(() => undefined);
    return turn;
  };
}
