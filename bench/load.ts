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

/**
 * The same open loop from `processes` client processes (bench/load-client.ts), each with its own
 * gRPC channel and `rate / processes` calls per second, started together: how a fleet of product
 * services calls the gateway, and a load generator whose own event loop and GC pauses are not the
 * bottleneck (one Node process sending 1000 calls/s pauses for GC often enough to show in a p99).
 */
export async function openLoopFleet(o: { processes: number; rate: number; seconds: number; target: string; apiKey: string; tag: string }) {
  const { spawn } = await import("node:child_process");
  const startAt = Date.now() + 4000;
  const runs = Array.from({ length: o.processes }, (_, p) => {
    const child = spawn(process.execPath, [...process.execArgv, new URL("./load-client.ts", import.meta.url).pathname], {
      env: { ...process.env, TARGET: o.target, API_KEY: o.apiKey, TAG: `${o.tag}-p${p}`, RATE: String(o.rate / o.processes), SECONDS: String(o.seconds), START_AT: String(startAt) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    return new Promise<{ latencies: number[]; errors: number; achievedRate: number }>((resolve, reject) =>
      child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load client ${p} exited with ${code}`)))),
    );
  });
  const results = await Promise.all(runs);
  return {
    latencies: results.flatMap((r) => r.latencies),
    errors: results.reduce((a, r) => a + r.errors, 0),
    achievedRate: results.reduce((a, r) => a + r.achievedRate, 0),
  };
}
