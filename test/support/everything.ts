import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";

/** Every Redis key with its value rendered as text (strings, hashes, lists, sets, zsets, streams). */
export async function dumpRedis(url: string): Promise<Map<string, string>> {
  const redis = new Redis(url);
  try {
    const out = new Map<string, string>();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        const value =
          type === "string"
            ? await redis.get(key)
            : type === "hash"
              ? await redis.hgetall(key)
              : type === "list"
                ? await redis.lrange(key, 0, -1)
                : type === "set"
                  ? await redis.smembers(key)
                  : type === "zset"
                    ? await redis.zrange(key, 0, -1)
                    : type === "stream"
                      ? await redis.xrange(key, "-", "+")
                      : null;
        out.set(key, JSON.stringify(value));
      }
    } while (cursor !== "0");
    return out;
  } finally {
    redis.disconnect();
  }
}

/** Every object of a bucket: its key and, for text objects (JSON Lines, text), its body. */
export async function dumpBucket(s3: S3Client, bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const key = o.Key!;
      let body = "";
      if (key.endsWith(".jsonl") || key.endsWith(".txt")) {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        body = await got.Body!.transformToString();
      }
      out.set(key, body);
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

/** Whether `text` names `id` as a whole token (not inside a longer id). */
export function mentions(text: string, id: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_])${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([^A-Za-z0-9_]|$)`).test(text);
}
