/**
 * The server build replaces config/validator.ts with ajv's standalone code of the same schema
 * (scripts/build-server.mjs, config/validator-code.ts). That code, bundled the way the build does
 * it, must accept, reject and fill in defaults exactly as the validator compiled at run time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ValidateFunction } from 'ajv';
import { build } from 'esbuild';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configValidatorCode } from '../../src/config/validator-code.js';
import { configValidator } from '../../src/config/validator.js';

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../src/config');

const CASES = [
  'server_name: example.com',
  'server_name: "bad name!"',
  'server_name: example.com\nmax_upload_size: 10M\nkey_refresh_interval: 2h',
  'server_name: example.com\nmax_upload_size: lots',
  'server_name: example.com\nkey_refresh_interval: soon',
  'server_name: example.com\nip_range_blacklist: ["10.0.0.0/8", "fc00::/7"]',
  'server_name: example.com\nip_range_blacklist: ["10.0.0.0/33"]',
  'server_name: example.com\ndefault_room_version: "10"',
  'server_name: example.com\ndefault_room_version: "99"',
  'server_name: example.com\npublic_baseurl: ftp://example.com/',
  'server_name: example.com\nlisteners: [{port: 8008, type: http, resources: [{names: [client]}]}]',
  'server_name: example.com\nlisteners: [{port: "8008"}]',
  'server_name: example.com\ndatabase: {name: psycopg2, url: "postgres://u@h/db"}',
  'server_name: example.com\nenable_registration: "yes"',
  'server_name: ""',
  'log_level: info',
];

describe('the precompiled config validator', () => {
  let dir: string;
  let precompiled: ValidateFunction;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-config-validator-'));
    const out = await build({
      stdin: { contents: configValidatorCode(), resolveDir: CONFIG_DIR, loader: 'js', sourcefile: 'validator.ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const file = join(dir, 'validator.mjs');
    writeFileSync(file, out.outputFiles[0]!.text);
    precompiled = ((await import(pathToFileURL(file).href)) as { configValidator(): ValidateFunction }).configValidator();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(CASES)('agrees with the run-time validator on %j', (yaml) => {
    const runtime = configValidator();
    const a = parseYaml(yaml) as unknown;
    const b = parseYaml(yaml) as unknown;
    const okA = runtime(a);
    const okB = precompiled(b);
    expect(okB).toBe(okA);
    // Defaults filled in the same way; the same first error, with the value it is about.
    expect(b).toEqual(a);
    const first = (v: ValidateFunction) => v.errors?.[0] && { ...v.errors[0], schema: undefined, parentSchema: undefined };
    expect(first(precompiled)).toEqual(first(runtime));
  });
});
