import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { assertSafeKey, BlobNotFoundError, BlobTooLargeError, capped, type BlobStore } from "./blob-store.js";

/** Objects as files under `root`, written atomically (temp file + rename). For dev and tests. */
export function createLocalBlobStore(root: string): BlobStore {
  const base = resolve(root);
  const path = (key: string) => {
    assertSafeKey(key);
    return join(base, key);
  };
  return {
    async put(key, body) {
      const file = path(key);
      await mkdir(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, body);
      await rename(tmp, file);
      return pathToFileURL(file).href;
    },
    async putStream(key, chunks) {
      const file = path(key);
      await mkdir(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        await pipeline(Readable.from(chunks), createWriteStream(tmp));
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      await rename(tmp, file);
      return pathToFileURL(file).href;
    },
    async get(key) {
      try {
        return new Uint8Array(await readFile(path(key)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BlobNotFoundError(key);
        throw err;
      }
    },
    async getStream(key, opts = {}) {
      const file = path(key);
      const maxBytes = opts.maxBytes ?? Infinity;
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BlobNotFoundError(key);
        throw err;
      }
      if (size > maxBytes) throw new BlobTooLargeError(key, size, maxBytes);
      // Opened lazily, on the first read: a caller that never iterates leaves no descriptor open.
      const chunks = (async function* () {
        yield* capped(key, createReadStream(file) as AsyncIterable<Uint8Array>, maxBytes);
      })();
      return { size, chunks };
    },
    uri: (key) => pathToFileURL(path(key)).href,
    signedUrl: async (key) => pathToFileURL(path(key)).href,
    async *list(prefix, opts = {}) {
      const keys: string[] = [];
      for (const entry of await readdir(base, { recursive: true, withFileTypes: true }).catch(() => [])) {
        if (!entry.isFile() || entry.name.endsWith(".tmp")) continue;
        const key = relative(base, join(entry.parentPath, entry.name)).split(sep).join("/");
        if (key.startsWith(prefix) && (opts.after === undefined || key > opts.after)) keys.push(key);
      }
      for (const key of keys.sort()) {
        const info = await stat(path(key)).catch(() => null);
        if (info) yield { key, size: info.size, lastModified: info.mtime };
      }
    },
    async deleteMany(keys) {
      for (const key of keys) await rm(path(key), { force: true });
      return { deleted: keys.length };
    },
  };
}
