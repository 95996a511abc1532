#!/usr/bin/env node
/** Writes the HTTP/JSON bridge's OpenAPI document (docs/openapi.json) from the compiled protos. */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadDescriptors } from "../descriptors.js";
import { openapiOf, OPENAPI_INFO } from "./openapi.js";

const out = process.argv[2] ?? fileURLToPath(new URL("../../../../docs/openapi.json", import.meta.url));
writeFileSync(out, `${JSON.stringify(openapiOf(loadDescriptors(), OPENAPI_INFO), null, 2)}\n`);
console.log(`wrote ${out}`);
