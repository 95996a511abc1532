/**
 * Builds the parts of the Lua scripts that write shared formats from their definitions in
 * `@rebeca/contracts`, so the scripts and the readers cannot drift apart by a field name.
 */
import { BATCH_FIELDS, OUTBOX_FIELDS, type OutboxField, type OutboxKind } from "@rebeca/contracts";

const quote = (name: string) => `'${name}'`;

/**
 * The field/value arguments of an outbox XADD, in the contract's order: each field's value is the
 * Lua expression given for it (`ARGV[2]`, `id`, ...); `kind` is written as the literal kind.
 */
export function luaOutboxFields<K extends OutboxKind>(kind: K, values: Omit<Record<OutboxField<K>, string>, "kind">): string {
  const all = { ...values, kind: quote(kind) } as Record<string, string>;
  return OUTBOX_FIELDS[kind].map((name) => `${quote(name)}, ${all[name]}`).join(", ");
}

/** A Lua table literal of the batch hash's field names (for HMGET, in the contract's order). */
export const LUA_BATCH_FIELDS = `{${BATCH_FIELDS.map(quote).join(", ")}}`;

/** Lua expressions `h[1]`.. for the batch fields as HMGET returned them into `h`. */
export const luaBatchValues = (table: string) =>
  Object.fromEntries(BATCH_FIELDS.map((name, i) => [name, `${table}[${i + 1}]`])) as Record<(typeof BATCH_FIELDS)[number], string>;
