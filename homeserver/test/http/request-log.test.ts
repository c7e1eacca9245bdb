/**
 * The request log: one line per answered request, and never an access token (the deprecated
 * `access_token` query parameter is part of the URL).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { writeNewSigningKeyFile } from '../../src/federation/own-keys.js';
import { startHomeserver, type RunningHomeserver } from '../../src/homeserver.js';
import { withoutAccessToken } from '../../src/http/app.js';
import { registerUser } from '../helpers/users.js';

describe('request log', () => {
  const lines: Record<string, unknown>[] = [];
  let dir: string;
  let server: RunningHomeserver;
  let baseUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-log-'));
    writeNewSigningKeyFile(join(dir, 'signing.key'));
    const yaml = [
      'server_name: hearth.test',
      'signing_key_path: signing.key',
      'listeners: [{port: 0, bind_addresses: [127.0.0.1], resources: [{names: [client]}]}]',
      'database: {name: sqlite3, args: {database: homeserver.db}}',
      'enable_registration: true',
      'enable_registration_without_verification: true',
    ].join('\n');
    writeFileSync(join(dir, 'homeserver.yaml'), yaml);
    const { config } = parseConfig([{ file: join(dir, 'homeserver.yaml'), text: yaml }]);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    server = await startHomeserver(config, pino({ level: 'info' }, sink));
    baseUrl = `http://127.0.0.1:${server.listeners[0]!.port}`;
  });

  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const requestLines = () => lines.filter((l) => l.msg === 'request completed');

  it('writes one line per request, with status and time, and hides a token in the query', async () => {
    const user = await registerUser(baseUrl, 'logged');
    const before = requestLines().length;
    const res = await fetch(`${baseUrl}/_matrix/client/v3/account/whoami?access_token=${encodeURIComponent(user.accessToken)}`);
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const mine = requestLines().slice(before);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ method: 'GET', statusCode: 200, url: '/_matrix/client/v3/account/whoami?access_token=<redacted>' });
    expect(typeof mine[0]!.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain(user.accessToken);
  });

  it('still logs a request that fails, once', async () => {
    const before = requestLines().length;
    const res = await fetch(`${baseUrl}/_matrix/client/v3/account/whoami`, { headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(401);
    await new Promise((r) => setTimeout(r, 50));
    expect(requestLines().slice(before)).toMatchObject([{ method: 'GET', statusCode: 401 }]);
  });

  it('redacts the token wherever it stands in the query', () => {
    expect(withoutAccessToken('/a?x=1&access_token=abc&y=2')).toBe('/a?x=1&access_token=<redacted>&y=2');
    expect(withoutAccessToken('/a?access_token=abc')).toBe('/a?access_token=<redacted>');
    expect(withoutAccessToken('/a?x=1')).toBe('/a?x=1');
  });
});
