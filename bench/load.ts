/**
 * Open-loop load: starts `rate` calls per second for `seconds` regardless of how fast earlier
 * ones return (closed loops hide queueing delay), and records each call's latency in ms.
 */
export async function openLoop(rate: number, seconds: number, call: (i: number) => Promise<unknown>) {
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const total = Math.round(rate * seconds);
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  while (sent < total) {
    // Catch up to the schedule in small bursts; setTimeout's granularity is ~1 ms.
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      inflight.push(
        call(sent).then(
          () => void latencies.push(performance.now() - t0),
          () => void errors++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  return { latencies, errors, achievedRate: total / elapsed };
}
