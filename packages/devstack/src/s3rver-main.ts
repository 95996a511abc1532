#!/usr/bin/env node
// Runs s3rver as its own process (a real S3-compatible server over HTTP on loopback).
// Usage: s3rver-main <port> <directory> <bucket>
import S3rver from "s3rver";

const [port, directory, bucket] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: "127.0.0.1", directory, silent: true, configureBuckets: [{ name: bucket! }] });
server.run().then(
  ({ port: bound }: { port: number }) => console.log(JSON.stringify({ msg: "s3rver ready", port: bound })),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
