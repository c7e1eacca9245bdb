/**
 * The config validator as JavaScript source (ajv standalone), for the server build
 * (scripts/build-server.mjs): an ES module exporting `configValidator()` like validator.ts.
 * Its formats are imported from formats.ts, relative to validator.ts's folder.
 */
import { _ } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { configAjv } from './validator.js';
import { configSchema } from './schema.js';

export function configValidatorCode(): string {
  const ajv = configAjv({ source: true, esm: true, formats: _`require("./formats.js").CONFIG_FORMATS` });
  const validate = ajv.compile(configSchema);
  return `${standaloneCode.default(ajv, validate)}\nexport function configValidator() { return validate; }\n`;
}
