/**
 * Runs async work one at a time, in the order it was handed over: each starts when the previous
 * one has settled (fulfilled or rejected). Model threads run their calls so (the prior's sampler thread, the decoder thread).
 */
export function createInTurn(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const turn = last.then(work, work);
    last = turn.catch(() => undefined);
    return turn;
  };
}
