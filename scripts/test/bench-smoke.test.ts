/**
 * Smoke test of the benchmark harness (scripts/bench): every scenario at tiny sizes against a
 * fresh Hearth the harness starts itself, and against a Hearth given with --hs. No timing is
 * asserted (timing lives in `npm run bench`), only that the harness runs, prints one JSON result,
 * and that its own counts found nothing lost.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHomeserver, type TestHomeserver } from '../../homeserver/test/helpers/server.js';
import { testPostgres } from '../../homeserver/test/helpers/databases.js';
import { BENCH_RATE_LIMITS } from '../bench/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'scripts/bench/main.ts');

interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: { ok: boolean; machine: Record<string, unknown>; scenarios: Record<string, Record<string, unknown>> };
}

function runBench(args: string[], timeoutMs = 280_000): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--preset', 'tiny', '--server-runtime', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      let json: BenchRun['json'];
      try {
        json = JSON.parse(stdout) as BenchRun['json'];
      } catch {
        reject(new Error(`bench printed no JSON on stdout (exit ${code}):\n${stdout.slice(0, 2000)}\n--- stderr ---\n${stderr.slice(-4000)}`));
        return;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** The counts every scenario reports: nothing missing, nothing duplicated. */
function expectNothingLost(scenario: Record<string, unknown>): void {
  const counts = scenario.counts as Record<string, number>;
  expect(counts).toBeDefined();
  if ('missing' in counts) expect(counts.missing).toBe(0);
  if ('duplicates' in counts) expect(counts.duplicates).toBe(0);
  if ('sent' in counts) expect(counts.found).toBe(counts.sent);
}

function explain(run: BenchRun): string {
  return `${JSON.stringify(run.json.scenarios, null, 1).slice(0, 3000)}\n--- stderr ---\n${run.stderr.slice(-3000)}`;
}

describe('bench harness (tiny sizes)', () => {
  it('runs every scenario against a Hearth it starts itself (SQLite), with the ceiling', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    try {
      const out = join(dir, 'out.json');
      const run = await runBench(['--ceiling', '--json', out]);
      expect(run.code, explain(run)).toBe(0);
      expect(run.json.ok).toBe(true);
      const machine = run.json.machine as Record<string, { cpu_loop_ms: number; node_start_ms: number } | undefined>;
      for (const at of ['calibration_start', 'calibration_end']) {
        expect(machine[at]!.cpu_loop_ms, at).toBeGreaterThan(0);
        expect(machine[at]!.node_start_ms, at).toBeGreaterThan(0);
      }
      expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(run.json);
      const s = run.json.scenarios;
      for (const name of ['send', 'fanout', 'initial-sync', 'join-leave-churn', 'startup']) {
        expect(s[name]?.status, `${name}: ${explain(run)}`).toBe('ok');
      }
      // The media endpoints may not be there yet: then the scenario says so instead of failing.
      expect(['ok', 'unavailable']).toContain(s.media?.status);
      for (const name of ['send', 'fanout', 'initial-sync', 'join-leave-churn']) expectNothingLost(s[name]!);
      if (s.media?.status === 'ok') expect((s.media.counts as Record<string, number>).downloaded_identical).toBe(6);

      const send = s.send as Record<string, Record<string, unknown>>;
      expect(send.counts).toMatchObject({ sent: 40, found: 40 });
      expect(send.sequential!.server_cpu_ms_per_event).toBeTypeOf('number');
      expect(send.sequential!.share_of_ceiling).toBeTypeOf('number');
      const fanout = s.fanout as Record<string, unknown>;
      // 2 rounds × 20 events, each to the 3 members of its room.
      expect(fanout.counts).toMatchObject({ delivered: 120, missing: 0, duplicates: 0, misdirected: 0 });
      expect((fanout.rss_after_rounds_mb as unknown[]).length).toBe(2);
      const startup = s.startup as Record<string, Record<string, unknown>>;
      expect(startup.empty!.first_start_ms).toBeTypeOf('number');
      expect(startup.large!.events).toBe(15);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('against a homeserver given with --hs', () => {
    let hs: TestHomeserver;
    beforeAll(async () => {
      hs = await startTestHomeserver(['enable_registration: true', ...BENCH_RATE_LIMITS].join('\n'));
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('runs the scenarios through the Client-Server API only', { timeout: 200_000 }, async () => {
      const run = await runBench(['--hs', hs.baseUrl, '--scenario', 'send,fanout,initial-sync,join-leave-churn,media,startup']);
      expect(run.code, explain(run)).toBe(0);
      const s = run.json.scenarios;
      for (const name of ['send', 'fanout', 'initial-sync', 'join-leave-churn']) {
        expect(s[name]?.status, `${name}: ${explain(run)}`).toBe('ok');
        expectNothingLost(s[name]!);
      }
      expect(['ok', 'unavailable']).toContain(s.media?.status);
      // No /proc figures for a server that is not ours (no --hs-pid) …
      expect((s.send!.sequential as Record<string, unknown>).server_cpu_ms).toBeUndefined();
      // … and no restarts.
      expect(s.startup?.status).toBe('unavailable');
    });

    it('registers with a registration token when the server asks for one', { timeout: 120_000 }, async () => {
      const tokenHs = await startTestHomeserver(['enable_registration: true', 'registration_requires_token: true', ...BENCH_RATE_LIMITS].join('\n'));
      try {
        const token = 'bench-smoke-token';
        await tokenHs.server.ctx.storage.accounts.createRegistrationToken({ token, usesAllowed: null, expiryTime: null });
        const without = await runBench(['--hs', tokenHs.baseUrl, '--scenario', 'send']);
        expect(without.json.scenarios.send?.status).toBe('failed');
        expect(String(without.json.scenarios.send?.error)).toContain('--registration-token');
        expect(without.code).toBe(1);
        const withToken = await runBench(['--hs', tokenHs.baseUrl, '--scenario', 'send', '--registration-token', token]);
        expect(withToken.code, explain(withToken)).toBe(0);
        expectNothingLost(withToken.json.scenarios.send!);
      } finally {
        await tokenHs.stop();
      }
    });
  });

  const pg = testPostgres();
  it.skipIf(!pg.url)('runs on PostgreSQL, on a fresh database it drops afterwards', { timeout: 200_000 }, async () => {
    const run = await runBench(['--db', 'postgres', '--pg-url', pg.url!, '--scenario', 'send,fanout,join-leave-churn']);
    expect(run.code, explain(run)).toBe(0);
    for (const name of ['send', 'fanout', 'join-leave-churn']) expectNothingLost(run.json.scenarios[name]!);
    expect((run.json.scenarios.send!.sequential as Record<string, unknown>).postgres_cpu_ms).toBeTypeOf('number');
    expect(run.stderr).not.toContain('could not drop');
  });
});
