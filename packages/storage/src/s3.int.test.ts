import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3Server } from "@rebeca/devstack";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobNotFoundError, BlobTooLargeError, type BlobStore } from "./blob-store.js";
import { createLocalBlobStore } from "./local.js";
import { createS3BlobStore, createS3Client } from "./s3.js";
import { createS3Put, S3PutError } from "./s3-put.js";

describe("S3 blob store on s3rver: streamed writes", () => {
  let s3: S3Server;
  let client: ReturnType<typeof createS3Client>;
  beforeAll(async () => {
    s3 = await startS3();
    client = createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
  });
  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
  });

  async function* chunksOf(bytes: Uint8Array, size: number, failAfter?: number) {
    for (let at = 0, n = 0; at < bytes.byteLength; at += size, n++) {
      if (n === failAfter) throw new Error("source broke");
      yield bytes.subarray(at, at + size);
    }
  }
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

  it("writes an object larger than a part as a multipart upload, byte for byte", async () => {
    const store = createS3BlobStore(client, s3.bucket, { partBytes: 1024 * 1024 });
    const bytes = new Uint8Array(randomBytes(2.5 * 1024 * 1024 + 17));
    const uri = await store.putStream("t/big.jsonl", chunksOf(bytes, 300_000), "application/x-ndjson");
    expect(uri).toBe(`s3://${s3.bucket}/t/big.jsonl`);
    expect(sha(await store.get("t/big.jsonl"))).toBe(sha(bytes));
  });

  it("writes small and empty objects with one PUT", async () => {
    const store = createS3BlobStore(client, s3.bucket, { partBytes: 1024 * 1024 });
    await store.putStream("t/small", chunksOf(Uint8Array.from([1, 2, 3]), 2), "text/plain");
    expect([...(await store.get("t/small"))]).toEqual([1, 2, 3]);
    await store.putStream("t/empty", chunksOf(new Uint8Array(0), 2), "text/plain");
    expect((await store.get("t/empty")).byteLength).toBe(0);
  });

  it("leaves no object and aborts the upload when the source fails midway", async () => {
    // Records what the real client sends (s3rver cannot list open uploads).
    const sent: string[] = [];
    const send = client.send.bind(client);
    const watched = Object.assign(Object.create(client) as typeof client, {
      send: ((command: { constructor: { name: string } }, ...rest: unknown[]) => {
        sent.push(command.constructor.name);
        return (send as (...a: unknown[]) => unknown)(command, ...rest);
      }) as typeof client.send,
    });
    const store = createS3BlobStore(watched, s3.bucket, { partBytes: 1024 * 1024 });
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024));
    await expect(store.putStream("t/broken", chunksOf(bytes, 512 * 1024, 5), "text/plain")).rejects.toThrow("source broke");
    await expect(store.get("t/broken")).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(sent).toEqual(["CreateMultipartUploadCommand", "UploadPartCommand", "UploadPartCommand", "AbortMultipartUploadCommand", "GetObjectCommand"]);
  });

  async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; pieces: number }> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    return { bytes: Buffer.concat(parts), pieces: parts.length };
  }

  /** The same contract on S3 (s3rver) and on local files. */
  async function streamsReads(store: BlobStore) {
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 5));
    await store.put("t/read-me", bytes, "application/octet-stream");
    const { size, chunks } = await store.getStream("t/read-me", { maxBytes: bytes.byteLength });
    expect(size).toBe(bytes.byteLength);
    const read = await readAll(chunks);
    expect(sha(read.bytes)).toBe(sha(bytes));
    // Delivered in pieces as it arrives, not as one buffer of the whole object.
    expect(read.pieces).toBeGreaterThan(1);
    await expect(store.getStream("t/missing")).rejects.toBeInstanceOf(BlobNotFoundError);
    const refused = await store.getStream("t/read-me", { maxBytes: bytes.byteLength - 1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BlobTooLargeError);
    expect((refused as BlobTooLargeError).size).toBe(bytes.byteLength);
    await store.put("t/empty-read", new Uint8Array(0), "text/plain");
    const empty = await store.getStream("t/empty-read", { maxBytes: 0 });
    expect(empty.size).toBe(0);
    expect((await readAll(empty.chunks)).bytes.byteLength).toBe(0);
  }

  it("reads an object as a stream with its size, refusing a missing or oversized one", async () => {
    await streamsReads(createS3BlobStore(client, s3.bucket));
  });

  it("reads a local object the same way", async () => {
    const dir = await mkdtemp(join(tmpdir(), "blobs-"));
    try {
      await streamsReads(createLocalBlobStore(dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("closes an S3 download the reader abandons, so the next reads still go through", async () => {
    const store = createS3BlobStore(client, s3.bucket);
    await store.put("t/abandon", new Uint8Array(randomBytes(4 * 1024 * 1024)), "application/octet-stream");
    // The client has a bounded socket pool: leaked downloads would stall these reads.
    for (let i = 0; i < 60; i++) {
      const { chunks } = await store.getStream("t/abandon");
      for await (const c of chunks) {
        expect(c.byteLength).toBeGreaterThan(0);
        break;
      }
    }
    expect((await store.get("t/abandon")).byteLength).toBe(4 * 1024 * 1024);
  }, 30_000);

  it("lean PUTs (createS3Put) write objects the SDK reads back byte for byte, with their content type, and overwrite in place", async () => {
    const lean = createS3Put({ bucket: s3.bucket, endpoint: s3.endpoint, region: "us-east-1", credentials: () => client.config.credentials() });
    const store = createS3BlobStore(client, s3.bucket);
    const png = new Uint8Array(Array.from({ length: 700 }, (_, i) => (i * 31) % 256));
    const keys = Array.from({ length: 20 }, (_, i) => `tenants/t/jobs/j ${i}+é/images/0.png`);
    const uris = await Promise.all(keys.map((k) => lean.put(k, png, "image/png")));
    expect(uris[3]).toBe(`s3://${s3.bucket}/${keys[3]}`);
    for (const k of keys) expect(await store.get(k)).toEqual(png);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: keys[0] }));
    expect(head.ContentType).toBe("image/png");
    await lean.put(keys[0]!, new Uint8Array([1, 2, 3]), "application/octet-stream");
    expect(await store.get(keys[0]!)).toEqual(new Uint8Array([1, 2, 3]));
    await lean.put("t/empty", new Uint8Array(0), "application/octet-stream");
    expect((await store.get("t/empty")).byteLength).toBe(0);
    lean.close();
  });

  it("a lean PUT the store refuses fails at once, with the store's error code", async () => {
    const lean = createS3Put({ bucket: "no-such-bucket", endpoint: s3.endpoint, region: "us-east-1", credentials: () => client.config.credentials() });
    const err = await lean.put("t/x", new Uint8Array([1]), "image/png").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3PutError);
    expect(err).toMatchObject({ status: 404, code: "NoSuchBucket" });
    await expect(lean.put("../escape", new Uint8Array([1]), "image/png")).rejects.toThrow(/unsafe object key/);
    lean.close();
  });
});

describe("listing and deleting objects, on s3rver and on local files alike", () => {
  let s3: S3Server;
  let client: ReturnType<typeof createS3Client>;
  let dir: string;
  const stores: Record<string, () => BlobStore> = {};
  beforeAll(async () => {
    s3 = await startS3();
    client = createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
    dir = await mkdtemp(join(tmpdir(), "rebeca-list-"));
    stores.s3 = () => createS3BlobStore(client, s3.bucket);
    stores.local = () => createLocalBlobStore(dir);
  });
  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const collect = async (it: AsyncIterable<{ key: string }>) => {
    const keys: string[] = [];
    for await (const o of it) keys.push(o.key);
    return keys;
  };

  for (const name of ["s3", "local"]) {
    it(`${name}: lists a prefix in key order with sizes, resumes after a key, and deletes idempotently`, async () => {
      const store = stores[name]!();
      await store.put("t/a/2.png", new Uint8Array(5), "image/png");
      await store.put("t/a/1.png", new Uint8Array(3), "image/png");
      await store.put("t/a/sub/3.png", new Uint8Array(1), "image/png");
      await store.put("t/b/1.png", new Uint8Array(1), "image/png");
      const listed = [];
      for await (const o of store.list("t/a/")) listed.push(o);
      expect(listed.map((o) => [o.key, o.size])).toEqual([
        ["t/a/1.png", 3],
        ["t/a/2.png", 5],
        ["t/a/sub/3.png", 1],
      ]);
      expect(listed.every((o) => o.lastModified instanceof Date)).toBe(true);
      expect(await collect(store.list("t/a/", { after: "t/a/1.png" }))).toEqual(["t/a/2.png", "t/a/sub/3.png"]);
      expect(await store.deleteMany(["t/a/1.png", "t/a/sub/3.png", "t/a/never-there.png"])).toEqual({ deleted: 3 });
      expect(await collect(store.list("t/"))).toEqual(["t/a/2.png", "t/b/1.png"]);
      await expect(store.get("t/a/1.png")).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.deleteMany(["t/a/1.png"])).toEqual({ deleted: 1 });
      expect(await store.deleteMany([])).toEqual({ deleted: 0 });
      await expect(store.deleteMany(["t/../escape"])).rejects.toThrow(/unsafe object key/);
    });
  }

  it("s3: pages through more than 1,000 keys and deletes them in requests of 1,000", async () => {
    const store = stores.s3!();
    const keys = Array.from({ length: 1203 }, (_, i) => `p/${String(i).padStart(5, "0")}`);
    for (let at = 0; at < keys.length; at += 50) await Promise.all(keys.slice(at, at + 50).map((k) => store.put(k, new Uint8Array(1), "text/plain")));
    expect(await collect(store.list("p/"))).toEqual(keys);
    expect(await store.deleteMany(keys)).toEqual({ deleted: keys.length });
    expect(await collect(store.list("p/"))).toEqual([]);
  });
});
