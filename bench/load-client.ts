/*
 * One process of a load-generating fleet (see `openLoopFleet` in load.ts): CreateJob calls on its
 * own gRPC channel in an open loop, from START_AT (epoch ms) for SECONDS at RATE per second; prints
 * its latencies as one JSON line.
 */
import { createJobClient } from "@rebeca/devstack";
import { openLoop } from "./load.js";

const { TARGET, API_KEY, TAG } = process.env as Record<string, string>;
const RATE = Number(process.env.RATE);
const SECONDS = Number(process.env.SECONDS);
const START_AT = Number(process.env.START_AT);

const client = createJobClient(TARGET, API_KEY);
// Warm the channel and the JIT before the measured window.
await openLoop(100, 1, (i) => client.createJob({ requestId: `${TAG}-warm-${i}`, userId: "u0001" }));
await new Promise((r) => setTimeout(r, Math.max(0, START_AT - Date.now())));
const result = await openLoop(RATE, SECONDS, (i) => client.createJob({ requestId: `${TAG}-${i}`, userId: "u0001", numImages: 4, labels: { bench: "latency" } }));
process.stdout.write(JSON.stringify(result) + "\n");
client.close();
