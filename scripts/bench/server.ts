/**
 * The servers the harness starts itself: a fresh Hearth (a child process running the real
 * `hearth start`, on a temporary SQLite file or a fresh PostgreSQL database) and the do-nothing
 * "ceiling" server. Both are children, so /proc/<pid> gives their own CPU time and memory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import pg from 'pg';
import { Pool } from 'undici';
import { BenchError } from './client.js';
import { now, sleep } from './stats.js';

export type Engine = 'sqlite' | 'postgres';
export type Runtime = 'dist' | 'tsx';

/** The checkout this file belongs to (the folder whose package.json is Hearth's). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'hearth') return dir;
    const up = dirname(dir);
    if (up === dir) throw new BenchError('cannot find the Hearth checkout (package.json named "hearth") above scripts/bench');
    dir = up;
  }
}

export interface ServerCommand {
  runtime: Runtime;
  /** node's own options (tsx's loader). */
  nodeArgs: string[];
  /** hearth's main module. */
  entry: string;
  /** The checkout it belongs to (the server's working directory). */
  root: string;
}

/**
 * How to run `hearth`: the compiled build (dist/, rebuilt first when a source is newer, as
 * `npm start` does) or the TypeScript sources through tsx. The build is what an operator runs and
 * what startup and memory figures should come from; tsx is quicker to get going (smoke test).
 */
export function serverCommand(runtime: Runtime, log: (msg: string) => void, root = repoRoot()): ServerCommand {
  if (runtime === 'dist') {
    const built = spawnSync(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], { cwd: root, encoding: 'utf8' });
    const main = join(root, 'dist/homeserver/src/main.js');
    if (built.status === 0 && existsSync(main)) return { runtime, nodeArgs: [], entry: main, root };
    // The bundler (scripts/build-server.mjs) does not type-check; it fails only on syntax or a
    // missing import. A bundle left from an earlier build is still run, with a warning.
    if (existsSync(main)) {
      log(`warning: the build failed (${(built.stderr ?? '').split('\n').find((l) => l.trim() !== '') ?? 'no message'}); running the existing bundle`);
      return { runtime, nodeArgs: [], entry: main, root };
    }
    log('the build failed; running the sources with tsx instead');
  }
  // tsx resolved from the checkout, whatever the server's working directory.
  const tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
  return { runtime: 'tsx', nodeArgs: ['--import', tsx], entry: join(root, 'homeserver/src/main.ts'), root };
}

/** A free TCP port on 127.0.0.1 (there is a short race until the child binds it; fine here). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface ProcSample {
  /** user + system CPU time of the process, ms. */
  cpuMs: number;
  /** … of which in the kernel (system calls: sockets, fsync, …), ms. */
  sysMs: number;
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size so far (VmHWM), bytes. */
  peakRss: number;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(out.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** CPU time and memory of a process from /proc (Linux); undefined when it cannot be read. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const tick = 1000 / ticksPerSecond();
    return { cpuMs: (utime + stime) * tick, sysMs: stime * tick, rss: kb('VmRSS'), peakRss: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

export const MB = 1024 * 1024;

/** Rate limits far above anything the harness sends, so it measures the server, not its limiter. */
const UNLIMITED = '{per_second: 1000000, burst_count: 1000000}';
export const BENCH_RATE_LIMITS = [
  `rc_message: ${UNLIMITED}`,
  `rc_registration: ${UNLIMITED}`,
  `rc_login: {address: ${UNLIMITED}, account: ${UNLIMITED}, failed_attempts: ${UNLIMITED}}`,
  `rc_joins: {local: ${UNLIMITED}, remote: ${UNLIMITED}}`,
  `rc_invites: {per_room: ${UNLIMITED}, per_user: ${UNLIMITED}, per_issuer: ${UNLIMITED}}`,
  `rc_admin_redaction: ${UNLIMITED}`,
  `rc_media_create: ${UNLIMITED}`,
];

export interface HearthOptions {
  engine: Engine;
  /** Admin URL of the PostgreSQL server, where a fresh database is created (and dropped after). */
  pgAdminUrl: string;
  command: ServerCommand;
  /** `node --cpu-prof` profiles of the server go here. */
  cpuProfDir?: string;
  /** More options for the server's node (e.g. --max-semi-space-size=2). */
  nodeOptions?: string[];
  logLevel: string;
  /** SQLite's `database.args.synchronous` (`full`/`normal`); absent: the server's default. */
  sqliteSynchronous?: string;
  /** Extra YAML lines for the bench config. */
  extraYaml?: string[];
  log: (msg: string) => void;
  /** Keep the data folder (and PostgreSQL database) afterwards. */
  keep?: boolean;
}

/**
 * A Hearth of our own: a data folder with a generated config (through `hearth generate-config`)
 * and a bench overlay (port, database, registration, rate limits), started and stopped as a child.
 */
export class HearthProcess {
  readonly dir: string;
  readonly serverName = 'hearth.bench';
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private pgDatabase: string | undefined;
  private port = 0;
  /** Spawn to /versions answering, ms, of each start. */
  readonly startups: number[] = [];

  private constructor(private readonly opts: HearthOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  }

  static async create(opts: HearthOptions): Promise<HearthProcess> {
    const hs = new HearthProcess(opts);
    try {
      await hs.prepare();
    } catch (err) {
      await hs.destroy();
      throw err;
    }
    return hs;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get engine(): Engine {
    return this.opts.engine;
  }

  /** The PostgreSQL database's name, when the engine is PostgreSQL. */
  get database(): string | undefined {
    return this.pgDatabase;
  }

  private async prepare(): Promise<void> {
    const generated = spawnSync(
      process.execPath,
      [...this.opts.command.nodeArgs, this.opts.command.entry, 'generate-config', '--server-name', this.serverName, '--config-path', join(this.dir, 'homeserver.yaml')],
      { cwd: this.opts.command.root, encoding: 'utf8' },
    );
    if (generated.status !== 0) {
      throw new BenchError(`hearth generate-config failed: ${(generated.stderr || generated.stdout).trim()}`);
    }
    const synchronous = this.opts.sqliteSynchronous ? `, synchronous: ${this.opts.sqliteSynchronous}` : '';
    let database = `database: {name: sqlite3, args: {database: homeserver.db${synchronous}}}`;
    if (this.opts.engine === 'postgres') {
      this.pgDatabase = `hearth_bench_${Math.floor(Date.now() / 1000).toString(36)}_${randomBytes(3).toString('hex')}`;
      await pgAdmin(this.opts.pgAdminUrl, `CREATE DATABASE "${this.pgDatabase}"`);
      const url = new URL(this.opts.pgAdminUrl);
      url.pathname = `/${this.pgDatabase}`;
      database = `database: {name: psycopg2, url: ${JSON.stringify(url.toString())}}`;
    }
    this.port = await freePort();
    const overlay = [
      `listeners: [{port: ${this.port}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client, federation]}]}]`,
      database,
      'enable_registration: true',
      'enable_registration_without_verification: true',
      `log_level: ${this.opts.logLevel}`,
      'trusted_key_servers: []',
      'suppress_key_server_warning: true',
      ...BENCH_RATE_LIMITS,
      ...(this.opts.extraYaml ?? []),
    ];
    writeFileSync(join(this.dir, 'bench.yaml'), `${overlay.join('\n')}\n`);
  }

  /** Starts the server and waits until /versions answers; returns that time in ms. */
  async start(): Promise<number> {
    if (this.child) throw new BenchError('the server is already running');
    const logFd = openSync(join(this.dir, 'server.log'), 'a');
    const prof = this.opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', resolve(this.opts.cpuProfDir)] : [];
    const t0 = now();
    const child = spawn(
      process.execPath,
      [...this.opts.command.nodeArgs, ...prof, ...(this.opts.nodeOptions ?? []), this.opts.command.entry, 'start', '-c', join(this.dir, 'homeserver.yaml'), '-c', join(this.dir, 'bench.yaml')],
      { cwd: this.opts.command.root, stdio: ['ignore', logFd, logFd] },
    );
    closeSync(logFd);
    this.child = child;
    this.exited = new Promise((done) => child.once('exit', (code) => done(code)));
    let exitCode: number | null | undefined;
    void this.exited.then((code) => {
      exitCode = code;
    });
    const probe = new Pool(`http://127.0.0.1:${this.port}`, { connections: 1 });
    try {
      for (;;) {
        if (exitCode !== undefined) {
          throw new BenchError(`hearth exited with code ${exitCode} while starting; its log:\n${this.logTail()}`);
        }
        if (now() - t0 > 60_000) throw new BenchError(`hearth did not answer /versions within 60 s; its log:\n${this.logTail()}`);
        try {
          const res = await probe.request({ path: '/_matrix/client/versions', method: 'GET' });
          await res.body.arrayBuffer();
          if (res.statusCode === 200) break;
        } catch {
          // not listening yet
        }
        await sleep(5);
      }
    } finally {
      await probe.destroy();
    }
    const ms = now() - t0;
    this.startups.push(ms);
    return ms;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  sample(): ProcSample | undefined {
    return this.pid === undefined ? undefined : procSample(this.pid);
  }

  /** Bytes the database takes: the SQLite files, or pg_database_size. */
  async databaseBytes(): Promise<number> {
    if (this.opts.engine === 'postgres') {
      const rows = await pgAdmin<{ size: string }>(this.opts.pgAdminUrl, `SELECT pg_database_size('${this.pgDatabase}') AS size`);
      return Number(rows[0]?.size ?? NaN);
    }
    return readdirSync(this.dir)
      .filter((f) => f.startsWith('homeserver.db'))
      .reduce((sum, f) => sum + statSync(join(this.dir, f)).size, 0);
  }

  /** PostgreSQL backends serving this server's database (their CPU is not in the server's /proc). */
  async databaseBackendPids(): Promise<number[]> {
    if (this.opts.engine !== 'postgres') return [];
    const rows = await pgAdmin<{ pid: number }>(this.opts.pgAdminUrl, `SELECT pid FROM pg_stat_activity WHERE datname = '${this.pgDatabase}'`);
    return rows.map((r) => r.pid);
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(join(this.dir, 'server.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.opts.keep) {
      this.opts.log(`kept ${this.dir}${this.pgDatabase ? ` and the PostgreSQL database ${this.pgDatabase}` : ''}`);
      return;
    }
    if (this.pgDatabase) {
      await pgAdmin(this.opts.pgAdminUrl, `DROP DATABASE IF EXISTS "${this.pgDatabase}" WITH (FORCE)`).catch((err: unknown) =>
        this.opts.log(`could not drop ${this.pgDatabase}: ${(err as Error).message}`),
      );
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function pgAdmin<T extends pg.QueryResultRow = Record<string, never>>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new BenchError(
      `cannot reach PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')}: ${(err as Error).message} (bash scripts/ensure-postgres.sh starts the local one)`,
    );
  }
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Sum of the CPU time (ms) of some processes (those gone are left out). */
export function cpuOf(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = procSample(pid);
    if (s) out.set(pid, s.cpuMs);
  }
  return out;
}

/**
 * The do-nothing server for `--ceiling`: node:http in a child process, answering every request with
 * the same small JSON once the request body has been read. What the client and HTTP alone reach.
 */
const CEILING_SOURCE = `
import { createServer } from 'node:http';
const body = Buffer.from(JSON.stringify({ event_id: '$ceiling', room_id: '!ceiling:bench', content_uri: 'mxc://bench/ceiling' }));
const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 120000;
server.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export class CeilingProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<CeilingProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--input-type=module', '-e', CEILING_SOURCE, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((ready, fail) => {
      child.once('exit', (code) => fail(new BenchError(`the ceiling server exited (${code})`)));
      child.stdout!.once('data', () => ready());
    });
    child.removeAllListeners('exit');
    return new CeilingProcess(child, port);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  sample(): ProcSample | undefined {
    return this.child.pid === undefined ? undefined : procSample(this.child.pid);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((done) => this.child.once('exit', done));
    this.child.kill('SIGTERM');
    await exited;
  }
}
