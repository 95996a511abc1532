import { readFileSync } from "node:fs";
import { REPO_ROOT } from "@rebeca/devstack";

/** The user ids of a committed model version, in table order. */
export function modelUserIds(version = "demo-v1"): string[] {
  return readFileSync(`${REPO_ROOT}models/${version}/user_ids.txt`, "utf8").split("\n").filter(Boolean);
}
