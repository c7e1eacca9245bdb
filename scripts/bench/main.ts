/**
 * Hearth's benchmark and load harness.
 *
 *   npm run bench -- [--hs URL] [--scenario NAME] [--json out.json] [--ceiling] …   (--help for all)
 *
 * It speaks only the Client-Server API, so it measures any homeserver. Without --hs it starts a
 * fresh Hearth per scenario (a child process on a temporary SQLite file, or --db postgres on a
 * fresh PostgreSQL database) and also reports that process's CPU time and memory. Progress goes to
 * stderr; one JSON result goes to stdout (and to --json FILE). Exit status 1 when a scenario failed
 * (e.g. an event was lost), 2 on bad arguments.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { calibrate } from './calibration.js';
import { BenchError, Homeserver } from './client.js';
import type { ScenarioContext, ScenarioResult, Sizes, Target } from './context.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { initialSyncScenario, type Populated } from './scenarios/initial-sync.js';
import { churnScenario } from './scenarios/join-leave-churn.js';
import { mediaScenario } from './scenarios/media.js';
import { sendScenario } from './scenarios/send.js';
import { startupScenario, type StartupContext } from './scenarios/startup.js';
import { CeilingProcess, HearthProcess, MB, repoRoot, serverCommand, type Engine, type Runtime, type ServerCommand } from './server.js';
import { PRESETS, SCENARIOS, type Preset, type ScenarioName } from './sizes.js';
import { round } from './stats.js';
import { settle } from './context.js';

const USAGE = `Usage: npm run bench -- [options]

Target (one of):
  --hs URL                  benchmark the homeserver at URL (Client-Server API only)
  (no --hs)                 start a fresh Hearth for each scenario, as a child process
  --db sqlite|postgres      the started Hearth's database (default sqlite: a temporary file)
  --pg-url URL              PostgreSQL admin URL; a fresh database is created there and dropped
                            afterwards (default postgres://postgres:postgres@127.0.0.1:5432/postgres)

What to run:
  --scenario NAME           ${SCENARIOS.join(', ')}; repeat or comma-separate (default: all)
  --preset full|quick|tiny  sizes (default full: the sizes of the issue's targets)
  --set SCENARIO.KEY=N      override one size, e.g. --set fanout.users=500 (see scripts/bench/sizes.ts)
  --ceiling                 also run the throughput scenarios against a do-nothing HTTP server

Accounts:
  --registration-token T    register with m.login.registration_token (else m.login.dummy)

Measuring:
  --hs-pid PID              with --hs: the server's pid on this machine, for CPU and memory from /proc
  --cpu-prof DIR            run the started Hearth under node --cpu-prof, profiles into DIR
  --server-runtime dist|tsx run the started Hearth from the build (default; rebuilt when stale) or
                            from the sources through tsx
  --hearth-dir DIR          the Hearth checkout to start (default: this one), e.g. a git worktree
                            of another commit for a before/after comparison
  --server-node-options OPTS
                            options for the started Hearth's node, e.g. "--max-semi-space-size=2"
  --log-level LEVEL         the started Hearth's log_level (default info, as shipped)
  --sqlite-synchronous full|normal
                            the started Hearth's database.args.synchronous (default: its own)
  --keep                    keep the started Hearth's data folder / database

Output:
  --json FILE               also write the JSON result to FILE
  -h, --help                this text`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      hs: { type: 'string' },
      db: { type: 'string', default: 'sqlite' },
      'pg-url': { type: 'string', default: 'postgres://postgres:postgres@127.0.0.1:5432/postgres' },
      scenario: { type: 'string', multiple: true },
      preset: { type: 'string', default: 'full' },
      set: { type: 'string', multiple: true },
      ceiling: { type: 'boolean', default: false },
      'registration-token': { type: 'string' },
      'hs-pid': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'server-runtime': { type: 'string', default: 'dist' },
      'hearth-dir': { type: 'string' },
      'server-node-options': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'sqlite-synchronous': { type: 'string' },
      keep: { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

  const engine = values.db as Engine;
  if (engine !== 'sqlite' && engine !== 'postgres') throw new UsageError('--db must be sqlite or postgres');
  const preset = values.preset as Preset;
  if (!(preset in PRESETS)) throw new UsageError('--preset must be full, quick or tiny');
  const runtime = values['server-runtime'] as Runtime;
  if (runtime !== 'dist' && runtime !== 'tsx') throw new UsageError('--server-runtime must be dist or tsx');
  const scenarios = (values.scenario ?? [...SCENARIOS]).flatMap((s) => s.split(',')).map((s) => s.trim());
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`unknown scenario "${s}" (${SCENARIOS.join(', ')})`);
  }
  const sizes: Record<ScenarioName, Sizes> = structuredClone(PRESETS[preset]);
  for (const item of values.set ?? []) {
    const m = /^([a-z-]+)\.([a-z_]+)=(\d+(?:\.\d+)?)$/.exec(item);
    if (!m || !(m[1]! in sizes) || !(m[2]! in sizes[m[1] as ScenarioName])) {
      throw new UsageError(`--set ${item}: expected SCENARIO.KEY=NUMBER with a key of scripts/bench/sizes.ts`);
    }
    sizes[m[1] as ScenarioName][m[2]!] = Number(m[3]);
  }
  const hsPid = values['hs-pid'] !== undefined ? Number(values['hs-pid']) : undefined;

  const runId = `b${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const started = new Date();
  const result: Record<string, unknown> = {
    tool: 'hearth-bench',
    date: started.toISOString(),
    commit: gitCommit(),
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model,
      memory_gb: round(totalmem() / 1024 ** 3, 1),
      node: process.version,
      loadavg_start: loadavg().map((l) => round(l, 2)),
      calibration_start: calibrate(),
    },
    options: { preset, scenarios, ceiling: values.ceiling, sizes: Object.fromEntries(scenarios.map((s) => [s, sizes[s as ScenarioName]])) },
  };

  let command: ServerCommand | undefined;
  if (values.hs) {
    result.target = { kind: 'external', url: values.hs, pid: hsPid ?? null };
  } else {
    log(`preparing Hearth (${runtime})`);
    command = serverCommand(runtime, log, values['hearth-dir'] ? resolve(values['hearth-dir']) : undefined);
    result.target = { kind: 'hearth', engine, runtime: command.runtime, log_level: values['log-level'], sqlite_synchronous: values['sqlite-synchronous'] ?? null, node_options: values['server-node-options'] ?? null, commit: gitCommit(command.root) };
  }
  if (values['cpu-prof']) mkdirSync(values['cpu-prof'], { recursive: true });

  const live = new Set<HearthProcess>();
  const cleanup = async () => {
    await Promise.all([...live].map((p) => p.destroy().catch(() => {})));
    live.clear();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const spawnHearth = async (): Promise<HearthProcess> => {
    const p = await HearthProcess.create({
      engine,
      pgAdminUrl: values['pg-url']!,
      command: command!,
      cpuProfDir: values['cpu-prof'],
      nodeOptions: values['server-node-options']?.split(/\s+/).filter(Boolean),
      logLevel: values['log-level']!,
      sqliteSynchronous: values['sqlite-synchronous'],
      keep: values.keep,
      log,
    });
    live.add(p);
    return p;
  };
  const release = async (p: HearthProcess) => {
    live.delete(p);
    await p.destroy();
  };

  let ceiling: CeilingProcess | undefined;
  if (values.ceiling) ceiling = await CeilingProcess.start();

  const external = values.hs ? new Homeserver(values.hs) : undefined;
  const externalPool = external?.pool({ connections: 8 });
  const results: Record<string, ScenarioResult> = {};
  let largeServer: StartupContext['largeServer'];
  let failed = false;
  for (const name of scenarios as ScenarioName[]) {
    log(`=== ${name} ===`);
    let own: HearthProcess | undefined;
    let hs = external;
    let pool = externalPool;
    const extra: Record<string, unknown> = {};
    let populated: Populated | undefined;
    try {
      if (!values.hs && name !== 'startup') {
        own = await spawnHearth();
        const ms = await own.start();
        await settle(500);
        const idle = own.sample();
        extra.server = { startup_ms: round(ms, 1), idle_rss_mb: idle ? round(idle.rss / MB, 1) : null, engine };
        log(`Hearth up at ${own.baseUrl} in ${round(ms, 0)} ms (${engine})`);
        hs = new Homeserver(own.baseUrl);
        pool = hs.pool({ connections: 8 });
      }
      const target: Target = { hs: hs!, pool: pool!, process: own, pid: () => own?.pid ?? hsPid };
      const ctx: ScenarioContext & StartupContext = {
        target,
        ceiling,
        sizes: sizes[name],
        runId,
        registrationToken: values['registration-token'],
        log,
        spawnHearth: values.hs ? undefined : spawnHearth,
        releaseHearth: release,
        largeServer,
      };
      const run = { send: sendScenario, fanout: fanoutScenario, 'initial-sync': initialSyncScenario, 'join-leave-churn': churnScenario, media: mediaScenario, startup: startupScenario }[name];
      const t0 = Date.now();
      const r = await run(ctx);
      results[name] = { ...r, ...extra, seconds_total: round((Date.now() - t0) / 1000, 1) };
      populated = (r as { populated?: Populated }).populated;
      if (r.status === 'failed') failed = true;
      log(`${name}: ${r.status}`);
    } catch (err) {
      failed = true;
      const e = err as Error;
      results[name] = { status: 'failed', error: `${e.name}: ${e.message}`, ...extra };
      log(`${name}: FAILED: ${e.name}: ${e.message}`);
      if (!(err instanceof BenchError) && e.stack) log(e.stack);
      if (own) log(`server log (last lines):\n${own.logTail()}`);
    } finally {
      if (hs && hs !== external) await hs.close();
      if (own) {
        // The initial-sync database is the "large database" of the startup scenario.
        if (name === 'initial-sync' && scenarios.includes('startup') && populated) {
          await own.stop();
          largeServer = { process: own, populated };
        } else {
          await release(own);
        }
      }
    }
  }
  if (largeServer) await release(largeServer.process);
  await ceiling?.stop();
  await external?.close();
  await cleanup();

  result.scenarios = results;
  (result.machine as Record<string, unknown>).loadavg_end = loadavg().map((l) => round(l, 2));
  (result.machine as Record<string, unknown>).calibration_end = calibrate();
  result.seconds_total = round((Date.now() - started.getTime()) / 1000, 1);
  result.ok = !failed;
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (values.json) writeFileSync(values.json, text);
  process.stdout.write(text);
  if (failed) log('FAILED: see "error" in the scenarios above');
  return failed ? 1 : 0;
}

function gitCommit(root = repoRoot()): string | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no');
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error & { code?: string };
    const usage = e instanceof UsageError || (e.code ?? '').startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`bench: ${usage ? '' : 'error: '}${e.message}\n${usage ? '(--help for the options)\n' : ''}`);
    if (!usage && !(e instanceof BenchError)) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(usage ? 2 : 1);
  },
);
