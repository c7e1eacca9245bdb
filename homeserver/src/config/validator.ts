/**
 * The config schema's validator. Compiling it with ajv took ~0.2 s of every start, so the server
 * build (scripts/build-server.mjs) replaces this module with the same validator precompiled
 * (ajv's standalone code, validator-code.ts); run from the sources (tests, tsx) it is compiled
 * here, on first use, with the same options.
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { CONFIG_FORMATS } from './formats.js';
import { configSchema, type RawConfig } from './schema.js';

// validateSchema: false — checking our own (fixed, tested) schema against JSON Schema's meta-schema
// compiled the meta-schema at every start (docs/PERFORMANCE.md).
const OPTIONS: Options = { useDefaults: true, allErrors: false, strict: false, verbose: true, validateSchema: false };

/** An ajv set up for the config schema; `code` for the standalone build. */
export function configAjv(code?: Options['code']): Ajv {
  const ajv = new Ajv({ ...OPTIONS, ...(code ? { code } : {}) });
  for (const [name, check] of Object.entries(CONFIG_FORMATS)) ajv.addFormat(name, check);
  return ajv;
}

let compiled: ValidateFunction<RawConfig> | undefined;

export function configValidator(): ValidateFunction<RawConfig> {
  return (compiled ??= configAjv().compile<RawConfig>(configSchema));
}
