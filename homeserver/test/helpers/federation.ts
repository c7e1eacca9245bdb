/**
 * Several real Hearth servers federating over loopback, for tests.
 *
 * Each server has a plain-HTTP client listener (for test clients and matrix-js-sdk) and an HTTPS
 * federation listener whose port is part of its server name (`localhost:<port>`), so the spec's
 * discovery resolves it by its explicit port. All share one self-signed certificate for
 * `localhost` and 127.0.0.1, made with the openssl CLI once per test process and trusted through
 * `federation_custom_ca_list`; loopback is whitelisted for outgoing requests.
 *
 * A server can be stopped and started again on the same database, ports and keys.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig, type HearthConfig } from '../../src/config/load.js';
import { writeNewSigningKeyFile } from '../../src/federation/own-keys.js';
import { startHomeserver, type RunningHomeserver } from '../../src/homeserver.js';

export interface FederatedServer {
  /** The server name, `localhost:<federation port>`. */
  readonly name: string;
  /** The plain-HTTP client listener, e.g. `http://127.0.0.1:40001`. */
  readonly baseUrl: string;
  /** The HTTPS federation listener, e.g. `https://localhost:40002`. */
  readonly federationUrl: string;
  /** The folder holding the config, database, signing key and media. */
  readonly dir: string;
  readonly config: HearthConfig;
  /** The running instance (a new one after `start()`/`restart()`). */
  readonly server: RunningHomeserver;
  readonly running: boolean;
  /** Stops the server; its folder stays, so it can be started again. Idempotent. */
  stop(): Promise<void>;
  /** Starts a stopped server again on the same database, ports and keys. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
}

export interface TestCertificate {
  dir: string;
  certPath: string;
  keyPath: string;
}

/** Options every federated test server gets; extraYaml replaces them key by key. */
const BASE_OPTIONS = [
  'log_level: silent',
  'trusted_key_servers: []',
  "ip_range_whitelist: ['127.0.0.0/8', '::1/128']",
  'rc_registration: {per_second: 1000, burst_count: 1000}',
  'rc_login: {address: {per_second: 1000, burst_count: 1000}, account: {per_second: 1000, burst_count: 1000}, failed_attempts: {per_second: 1000, burst_count: 1000}}',
  'rc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}',
  'rc_invites: {per_room: {per_second: 1000, burst_count: 1000}, per_user: {per_second: 1000, burst_count: 1000}, per_issuer: {per_second: 1000, burst_count: 1000}}',
  'rc_message: {per_second: 1000, burst_count: 1000}',
  'rc_federation: {window_size: 1000, sleep_limit: 10000, sleep_delay: 1, reject_limit: 100000, concurrent: 1000}',
];

const cleanups: string[] = [];
let cleanupRegistered = false;
function removeAtExit(dir: string): void {
  cleanups.push(dir);
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.once('exit', () => {
    for (const d of cleanups) rmSync(d, { recursive: true, force: true });
  });
}

/**
 * A self-signed certificate (EC P-256, valid 2 days) for the given names: `DNS:` for host names,
 * `IP:` for addresses. Tests needing other names (discovery) make their own.
 */
export function generateTestCertificate(names: readonly string[] = ['localhost', '127.0.0.1', '::1']): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cert-'));
  removeAtExit(dir);
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2',
      '-subj', `/CN=${names[0] ?? 'localhost'}`,
      '-addext', `subjectAltName=${san}`,
    ],
    { stdio: 'pipe' },
  );
  return { dir, certPath, keyPath };
}

let sharedCertificate: TestCertificate | undefined;
/** The certificate of every harness server: made once per test process. */
export function harnessCertificate(): TestCertificate {
  sharedCertificate ??= generateTestCertificate();
  return sharedCertificate;
}

/** A port free right now on 127.0.0.1 (the server binds it a moment later). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** The YAML of one harness server (exported for tests that start a server by hand). */
export function federatedServerYaml(opts: { clientPort: number; federationPort: number; cert: TestCertificate }): string {
  return [
    `server_name: "localhost:${opts.federationPort}"`,
    `public_baseurl: "http://127.0.0.1:${opts.clientPort}/"`,
    'signing_key_path: signing.key',
    `tls_certificate_path: "${opts.cert.certPath}"`,
    `tls_private_key_path: "${opts.cert.keyPath}"`,
    `federation_custom_ca_list: ["${opts.cert.certPath}"]`,
    'listeners:',
    `  - port: ${opts.clientPort}`,
    "    bind_addresses: ['127.0.0.1']",
    '    resources: [{names: [client]}]',
    `  - port: ${opts.federationPort}`,
    "    bind_addresses: ['127.0.0.1']",
    '    tls: true',
    '    resources: [{names: [federation]}]',
    'database: {name: sqlite3, args: {database: homeserver.db}}',
    'media_store_path: media',
    ...BASE_OPTIONS,
  ].join('\n');
}

async function startOne(extraYaml: string): Promise<FederatedServer> {
  const cert = harnessCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'hearth-fed-'));
  removeAtExit(dir);
  writeNewSigningKeyFile(join(dir, 'signing.key'));
  const clientPort = await freePort();
  const federationPort = await freePort();
  const yaml = federatedServerYaml({ clientPort, federationPort, cert });
  const file = join(dir, 'homeserver.yaml');
  writeFileSync(file, yaml);
  const { config } = parseConfig([
    { file, text: yaml },
    { file: join(dir, 'extra.yaml'), text: extraYaml },
  ]);
  const log = pino({ level: 'silent' });

  let current: RunningHomeserver | undefined = await startHomeserver(config, log);
  let last = current;
  let transition: Promise<void> = Promise.resolve();
  const serialised = (step: () => Promise<void>): Promise<void> => (transition = transition.then(step, step));

  const handle: FederatedServer = {
    name: config.server_name,
    baseUrl: `http://127.0.0.1:${clientPort}`,
    federationUrl: `https://localhost:${federationPort}`,
    dir,
    config,
    get server() {
      return current ?? last;
    },
    get running() {
      return current !== undefined;
    },
    stop: () =>
      serialised(async () => {
        const running = current;
        current = undefined;
        await running?.stop();
      }),
    start: () =>
      serialised(async () => {
        if (current) return;
        current = last = await startHomeserver(config, log);
      }),
    restart: async () => {
      await handle.stop();
      await handle.start();
    },
  };
  return handle;
}

/**
 * Starts `n` federating servers. `extraYaml` is given to each of them, replacing the harness's
 * options key by key. Stop them with `stop()` each, or `stopAll`.
 */
export async function startFederatedServers(n: number, extraYaml = ''): Promise<FederatedServer[]> {
  const servers: FederatedServer[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await startOne(extraYaml));
  } catch (err) {
    await stopAll(servers);
    throw err;
  }
  return servers;
}

export async function stopAll(servers: readonly FederatedServer[] | undefined): Promise<void> {
  await Promise.allSettled((servers ?? []).map((s) => s.stop()));
}
