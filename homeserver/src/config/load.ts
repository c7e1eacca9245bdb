/**
 * Loading homeserver.yaml: read one or more files, merge them (later files replace earlier ones
 * key by key at the top level, as Synapse does), validate against the schema, and turn sizes,
 * durations and relative paths into values the server can use.
 *
 * Every problem becomes a ConfigError whose message is one line naming the file, the key and
 * what is wrong. Keys Hearth does not know are warnings, not errors, so that an existing Synapse
 * homeserver.yaml starts Hearth.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { DatabaseConfig } from '../storage/database.js';
import { configSchema, type RawConfig } from './schema.js';
import { parseDuration, parseSize } from './units.js';
import { configValidator } from './validator.js';

export { isIpRange } from './formats.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The database section as the storage layer opens it. */
export type DatabaseSettings = DatabaseConfig;

/** The validated configuration: sizes in bytes, durations in milliseconds, paths absolute. */
export interface HearthConfig
  extends Omit<
    RawConfig,
    | 'key_refresh_interval'
    | 'max_upload_size'
    | 'max_image_pixels'
    | 'turn_user_lifetime'
    | 'refreshable_access_token_lifetime'
    | 'nonrefreshable_access_token_lifetime'
    | 'refresh_token_lifetime'
    | 'login_via_existing_session'
  > {
  key_refresh_interval: number;
  max_upload_size: number;
  max_image_pixels: number;
  turn_user_lifetime: number;
  /** ms (access tokens of clients that support refresh tokens). */
  refreshable_access_token_lifetime: number;
  /** ms; undefined: access tokens without a refresh token never expire. */
  nonrefreshable_access_token_lifetime: number | undefined;
  /** ms; undefined: refresh tokens never expire. */
  refresh_token_lifetime: number | undefined;
  login_via_existing_session: { enabled: boolean; require_ui_auth: boolean; token_timeout: number };
  signing_key_path: string;
  /** The database section turned into what the storage layer opens. */
  databaseSettings: DatabaseSettings;
}

export interface ConfigSource {
  file: string;
  text: string;
}

export interface LoadedConfig {
  config: HearthConfig;
  files: string[];
  warnings: string[];
}

const FORMAT_HINTS: Record<string, string> = {
  'server-name': 'must be a host name with an optional port, such as example.com or example.com:8448',
  'http-url': 'must be an http:// or https:// URL',
  duration: 'must be a duration such as 30s, 5m, 1h, 1d or a number of milliseconds',
  size: 'must be a size such as 10K, 50M, 1G or a number of bytes',
  'ip-range': 'must be an IP address or CIDR range such as 10.0.0.0/8 or fc00::/7',
  'room-version': 'must be a known room version (1 to 12)',
};

/** Reads and parses the given config files. */
export function loadConfigFiles(paths: string[]): LoadedConfig {
  const sources = paths.map((path) => {
    const file = resolve(path);
    try {
      return { file, text: readFileSync(file, 'utf8') };
    } catch (err) {
      throw new ConfigError(`${file}: cannot read the config file: ${describeFsError(err)}`);
    }
  });
  return parseConfig(sources);
}

export function parseConfig(sources: ConfigSource[]): LoadedConfig {
  if (sources.length === 0) throw new ConfigError('no config file given');
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const { file, text } of sources) {
    for (const [key, value] of Object.entries(parseYamlDocument(file, text))) {
      merged[key] = value;
      origin.set(key, file);
    }
  }
  const fileOf = (key: string): string => origin.get(key) ?? sources.map((s) => s.file).join(', ');
  const warnings = unknownKeys(merged, configSchema as unknown as SchemaNode).map(
    (path) => `${fileOf(topKey(path))}: ${path}: unknown option, ignored`,
  );

  const validate = configValidator();
  if (!validate(merged)) {
    const error = validate.errors![0]!;
    const path = errorPath(error);
    throw new ConfigError(`${fileOf(topKey(path))}: ${path}: ${describeAjvError(error)}${describeValue(error)}`);
  }
  const raw = merged as unknown as RawConfig;
  const defaultDir = dirname(sources[0]!.file);
  const dirOf = (key: string): string => (origin.has(key) ? dirname(origin.get(key)!) : defaultDir);
  const config = normalise(raw, dirOf, fileOf);
  return { config, files: sources.map((s) => s.file), warnings: [...warnings, ...deprecations(raw, fileOf)] };
}

function parseYamlDocument(file: string, text: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`${file}: not valid YAML${where}: ${message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${file}: the config must be a YAML mapping of option names to values`);
  }
  return doc as Record<string, unknown>;
}

function normalise(raw: RawConfig, dirOf: (key: string) => string, fileOf: (key: string) => string): HearthConfig {
  const path = (key: string, value: string): string => (isAbsolute(value) ? value : resolve(dirOf(key), value));
  const unit = (key: keyof RawConfig, parse: (v: string | number) => number | undefined): number => {
    const value = parse(raw[key] as string | number);
    if (value === undefined) throw new ConfigError(`${fileOf(key)}: ${key}: invalid value ${JSON.stringify(raw[key])}`);
    return value;
  };

  raw.listeners.forEach((listener, i) => {
    if (listener.tls && (!raw.tls_certificate_path || !raw.tls_private_key_path)) {
      throw new ConfigError(
        `${fileOf('listeners')}: listeners[${i}].tls: a TLS listener needs tls_certificate_path and tls_private_key_path`,
      );
    }
  });

  return {
    ...raw,
    key_refresh_interval: unit('key_refresh_interval', parseDuration),
    max_upload_size: unit('max_upload_size', parseSize),
    max_image_pixels: unit('max_image_pixels', parseSize),
    turn_user_lifetime: unit('turn_user_lifetime', parseDuration),
    refreshable_access_token_lifetime: unit('refreshable_access_token_lifetime', parseDuration),
    nonrefreshable_access_token_lifetime:
      raw.nonrefreshable_access_token_lifetime === undefined ? undefined : unit('nonrefreshable_access_token_lifetime', parseDuration),
    refresh_token_lifetime: raw.refresh_token_lifetime === undefined ? undefined : unit('refresh_token_lifetime', parseDuration),
    login_via_existing_session: {
      ...raw.login_via_existing_session,
      token_timeout: durationOf(raw.login_via_existing_session.token_timeout, 'login_via_existing_session.token_timeout', fileOf),
    },
    signing_key_path: path('signing_key_path', raw.signing_key_path ?? `${raw.server_name.replace(/[:[\]]/g, '_')}.signing.key`),
    tls_certificate_path: raw.tls_certificate_path && path('tls_certificate_path', raw.tls_certificate_path),
    tls_private_key_path: raw.tls_private_key_path && path('tls_private_key_path', raw.tls_private_key_path),
    media_store_path: path('media_store_path', raw.media_store_path),
    app_service_config_files: raw.app_service_config_files.map((f) => path('app_service_config_files', f)),
    federation_custom_ca_list: raw.federation_custom_ca_list.map((f) => path('federation_custom_ca_list', f)),
    databaseSettings: databaseSettings(raw.database, (p) => path('database', p), fileOf('database')),
  };
}

function durationOf(value: string | number, key: string, fileOf: (key: string) => string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new ConfigError(`${fileOf(key.split('.')[0]!)}: ${key}: invalid value ${JSON.stringify(value)}`);
  return ms;
}

/** Synapse's `database` section (sqlite3 or psycopg2 with libpq-style args), or a PostgreSQL URL. */
function databaseSettings(db: RawConfig['database'], path: (p: string) => string, file: string): DatabaseSettings {
  const args = db.args;
  const str = (key: string): string | undefined => {
    const v = args[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new ConfigError(`${file}: database.args.${key}: must be a string`);
    }
    return String(v);
  };
  const int = (key: string): number | undefined => {
    const v = args[key];
    if (v === undefined || v === null) return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throw new ConfigError(`${file}: database.args.${key}: must be a non-negative integer`);
    }
    return n;
  };

  if (db.name === 'sqlite3') {
    const database = str('database') ?? 'homeserver.db';
    const sqlite: Extract<DatabaseSettings, { engine: 'sqlite' }> = { engine: 'sqlite', path: database === ':memory:' ? database : path(database) };
    const synchronous = sqliteSynchronous(str('synchronous'), file);
    if (synchronous !== undefined) sqlite.synchronous = synchronous;
    return sqlite;
  }
  return {
    engine: 'postgres',
    connectionString: db.url ?? str('url'),
    host: str('host'),
    port: int('port'),
    user: str('user'),
    password: str('password'),
    database: str('dbname') ?? str('database'),
    poolMin: int('cp_min'),
    poolMax: int('cp_max'),
  };
}

/**
 * `database.args.synchronous` (SQLite): `full` (the default: openSqlite) or `normal`. In WAL mode
 * `normal` keeps every acknowledged write across a crash of the process (kill -9) and skips the
 * fsync per commit; only an OS crash or power loss can lose the last commits. docs/PERFORMANCE.md
 * has the figures.
 */
function sqliteSynchronous(value: string | undefined, file: string): 'full' | 'normal' | undefined {
  if (value === undefined) return undefined;
  const mode = value.toLowerCase();
  if (mode !== 'full' && mode !== 'normal') {
    throw new ConfigError(`${file}: database.args.synchronous: must be "normal" or "full"`);
  }
  return mode;
}

function deprecations(raw: RawConfig, fileOf: (key: string) => string): string[] {
  const notes: string[] = [];
  if (raw.log_config !== undefined) {
    notes.push(`${fileOf('log_config')}: log_config: Synapse's logging config is not read by Hearth; set log_level instead`);
  }
  return notes;
}

/** Paths (`a.b[0].c`) of keys present in the data but absent from the schema's properties. */
export function unknownKeys(data: unknown, schema: SchemaNode, prefix = ''): string[] {
  if (Array.isArray(data) && schema.items) {
    return data.flatMap((item, i) => unknownKeys(item, schema.items!, `${prefix}[${i}]`));
  }
  if (!isPlainObject(data) || !schema.properties) return [];
  return Object.entries(data).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    const child = schema.properties![key];
    if (!child) return [path];
    return unknownKeys(value, child, path);
  });
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errorPath(error: ErrorObject): string {
  const segments = error.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'required') segments.push(String(error.params.missingProperty));
  let path = '';
  for (const segment of segments) path += /^\d+$/.test(segment) ? `[${segment}]` : path ? `.${segment}` : segment;
  return path || '(top level)';
}

function topKey(path: string): string {
  return path.split(/[.[]/)[0]!;
}

function describeAjvError(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'missing (required)';
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return FORMAT_HINTS[String(error.params.format)] ?? `has the wrong format (${error.params.format})`;
    case 'type':
      return `must be ${[error.params.type].flat().join(' or ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}

function describeValue(error: ErrorObject): string {
  if (error.keyword === 'required') return '';
  const shown = JSON.stringify(error.data);
  return shown !== undefined && shown.length <= 60 ? ` (got ${shown})` : '';
}

export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e.message ?? String(err);
  }
}
