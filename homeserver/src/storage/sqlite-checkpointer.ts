/**
 * WAL checkpoints off the event loop. SQLite copies the write-ahead log back into the database
 * file (a checkpoint) from inside the COMMIT that pushes the log past `wal_autocheckpoint` pages;
 * that checkpoint writes and fsyncs the database file, and because better-sqlite3 is synchronous it
 * stalls every request of the process meanwhile: on the send benchmark it made COMMIT cost 3.2 ms on
 * average instead of 0.7 ms (docs/PERFORMANCE.md).
 *
 * So the main connection only checkpoints as a backstop (`BACKSTOP_PAGES`), and a worker thread
 * with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)` every `INTERVAL_MS`. PASSIVE never
 * waits for the writer or readers and never blocks them; it copies what it can, and SQLite starts
 * the log from its beginning again once everything was copied. Checkpoints do not change
 * durability: a committed transaction is in the log (and, with synchronous=FULL, synced) before
 * COMMIT returns.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';

/** How often the worker checkpoints. */
const INTERVAL_MS = 250;
/** The main connection still checkpoints if the log reaches this many pages (≈ 40 MB at 4 KiB). */
const BACKSTOP_PAGES = 10_000;
/** The worker starts once the log has reached this size (half of SQLite's default 1000 pages). */
const WORKER_AFTER_BYTES = 2 * 1024 * 1024;
const WATCH_MS = 1000;
/** When the log starts over, its file is cut back to this size (it otherwise keeps its largest). */
const LOG_SIZE_LIMIT = 16 * 1024 * 1024;

// CommonJS, evaluated in the worker: it opens the file and checkpoints until told to stop.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 0 });
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
// The log only starts over once every frame in it was copied; under steady writes new frames
// arrive during each pass, so a few quick passes catch up with the writer.
const timer = setInterval(() => {
  try {
    for (let pass = 0; pass < 8; pass++) {
      const r = checkpoint.get();
      if (r.busy || r.log <= r.checkpointed) break;
    }
  } catch { /* busy or closing: the next round tries again */ }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the worker and closes its connection (before or after the main one: either is safe). */
  stop(): Promise<void>;
}

/**
 * Background checkpoints for the WAL database open in `main` at `path`, started once the server
 * writes enough to need them: a worker thread costs ~16 MB of memory, which an idle or lightly
 * used server is spared (until then SQLite checkpoints in the main connection as usual; the log's
 * size is looked at every `WATCH_MS`).
 */
export function startCheckpointer(main: SqliteDatabase.Database, path: string): Checkpointer {
  main.pragma(`journal_size_limit = ${LOG_SIZE_LIMIT}`);
  let started: Checkpointer | undefined;
  const watch = setInterval(() => {
    let size = 0;
    try {
      size = statSync(`${path}-wal`).size;
    } catch {
      return; // no log yet
    }
    if (size < WORKER_AFTER_BYTES) return;
    clearInterval(watch);
    if (!main.open) return; // closing
    try {
      started = startWorker(main, path);
    } catch {
      // No worker (e.g. threads unavailable): SQLite keeps checkpointing in the main connection.
    }
  }, WATCH_MS);
  watch.unref();
  return {
    async stop() {
      clearInterval(watch);
      await started?.stop();
    },
  };
}

function startWorker(main: SqliteDatabase.Database, path: string): Checkpointer {
  main.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, driver: createRequire(import.meta.url).resolve('better-sqlite3'), intervalMs: INTERVAL_MS },
  });
  // The worker must never keep the process alive, nor take it down: without it, the backstop
  // checkpoints in the main connection still bound the log.
  worker.unref();
  let failed = false;
  worker.on('error', () => {
    failed = true;
    if (main.open) main.pragma('wal_autocheckpoint = 1000'); // SQLite's default again
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      // Referenced while stopping: an awaiting caller must not see the event loop run dry.
      worker.ref();
      if (!failed) worker.postMessage('stop');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
