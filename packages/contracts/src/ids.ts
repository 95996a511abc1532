import { randomBytes } from "node:crypto";

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/** A time-sortable id (ULID layout, lower-case): 10 chars of milliseconds + 16 random. */
export function newId(prefix: string, now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rand = randomBytes(16);
  let tail = "";
  for (let i = 0; i < 16; i++) tail += CROCKFORD[rand[i]! % 32];
  return `${prefix}_${time}${tail}`;
}

/** Seed of image `index` of a job whose image-0 seed is `seed` (uint32, stable across runs). */
export function imageSeed(seed: number, index: number): number {
  if (index === 0) return seed >>> 0;
  let h = (seed ^ Math.imul(index, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const ID_TAIL = /^[0-9a-z]{26}$/;

/**
 * Whether `value` is shaped like an id {@link newId} made with `prefix` (`job_…`, `batch_…`).
 * Checks the shape only: callers still look the id up, and refuse a wrong shape before they do.
 */
export function isId(prefix: string, value: string): boolean {
  return value.startsWith(`${prefix}_`) && ID_TAIL.test(value.slice(prefix.length + 1));
}
