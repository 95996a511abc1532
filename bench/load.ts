/**
 * Open-loop load: starts `rate` calls per second for `seconds` regardless of how fast earlier
 * ones return (closed loops hide queueing delay), and records each call's latency in ms.
 */
export async function openLoop(rate: number, seconds: number, call: (i: number) => Promise<unknown>) {
  // Latencies go into a preallocated array and only a count of calls in flight is kept (not their
  // promises): a generator that retains 10,000 promises and closures promotes them to the old
  // generation, and its own GC pauses then show up in the tail it is measuring.
  const total = Math.round(rate * seconds);
  const latencies = new Float64Array(total);
  let recorded = 0;
  let errors = 0;
  let sent = 0;
  let pending = 0;
  let allDone: () => void = () => {};
  const settled = () => {
    if (--pending === 0 && sent === total) allDone();
  };
  const start = performance.now();
  while (sent < total) {
    // Catch up to the schedule in small bursts; setTimeout's granularity is ~1 ms.
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      pending++;
      call(sent).then(
        () => {
          latencies[recorded++] = performance.now() - t0;
          settled();
        },
        () => {
          errors++;
          settled();
        },
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  if (pending > 0) await new Promise<void>((resolve) => (allDone = resolve));
  const elapsed = (performance.now() - start) / 1000;
  return { latencies: Array.from(latencies.subarray(0, recorded)), errors, achievedRate: total / elapsed };
}
