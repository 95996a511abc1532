#!/usr/bin/env node
// Runs s3rver as its own process (a real S3-compatible server over HTTP on loopback).
// Usage: s3rver-main <port> <directory> <bucket> [log-puts]
import S3rver from "s3rver";

const [port, directory, bucket, logPuts] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: "127.0.0.1", directory, silent: true, configureBuckets: [{ name: bucket! }] });
// One line per object written, so fault tests count how often each key was uploaded (redone work).
if (logPuts === "log-puts")
  server.on("event", (e: { Records: { eventName: string; s3: { object: { key: string } } }[] }) => {
    for (const r of e.Records) if (r.eventName.startsWith("ObjectCreated")) console.log(JSON.stringify({ msg: "s3 put", key: r.s3.object.key }));
  });
server.run().then(
  ({ port: bound }: { port: number }) => console.log(JSON.stringify({ msg: "s3rver ready", port: bound })),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
