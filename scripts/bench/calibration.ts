/**
 * How fast the machine is at the time of a run, so that figures of runs hours or days apart can
 * be compared: the same commit measured 1.7× slower in one afternoon window than in the next on
 * the shared 2-core machine (docs/PERFORMANCE.md, fifth round). Two fixed pieces of work, each
 * the median of three: a CPU-bound loop of what a homeserver spends its time on (JSON, SHA-256)
 * in this process, and starting a bare `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { percentile, round } from './stats.js';

export interface Calibration {
  /** One fixed loop of JSON and hashing, ms. */
  cpu_loop_ms: number;
  /** Starting `node -e 0` to its exit, ms. */
  node_start_ms: number;
}

const EVENT = {
  type: 'm.room.message',
  sender: '@calibration:bench.example',
  room_id: '!calibration:bench.example',
  origin_server_ts: 1_700_000_000_000,
  content: { msgtype: 'm.text', body: 'x'.repeat(200) },
  prev_events: ['$a', '$b'],
  auth_events: ['$c', '$d', '$e'],
  depth: 12,
};
const ROUNDS = 20_000;

function cpuLoop(): number {
  const t0 = performance.now();
  let acc = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const json = JSON.stringify({ ...EVENT, depth: i });
    acc += (JSON.parse(json) as { depth: number }).depth;
    acc += createHash('sha256').update(json).digest()[0]!;
  }
  if (acc < 0) throw new Error('unreachable'); // keeps the loop's work observable
  return performance.now() - t0;
}

function nodeStart(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  return performance.now() - t0;
}

export function calibrate(): Calibration {
  const three = (f: () => number) => round(percentile([f(), f(), f()].sort((a, b) => a - b), 50), 1);
  return { cpu_loop_ms: three(cpuLoop), node_start_ms: three(nodeStart) };
}
