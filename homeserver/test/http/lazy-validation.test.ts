/**
 * Route schemas are compiled on a route's first request (http/lazy-validation.ts): every schema
 * must still compile, and a request must be validated as before, also on the first request.
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lazyValidatorFactory } from '../../src/http/lazy-validation.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

describe('lazily compiled route schemas', () => {
  let hs: TestHomeserver;
  let alice: RegisteredUser;

  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true\n');
    alice = await registerUser(hs.baseUrl, 'alice');
  });
  afterAll(() => hs?.stop());

  it('compiles every route schema of every listener', () => {
    for (const listener of hs.server.listeners) {
      const app = listener.app as unknown as { hearthCompileSchemas(): void };
      expect(() => app.hearthCompileSchemas()).not.toThrow();
    }
  });

  it('answers a wrongly typed body with M_BAD_JSON on the first request of a route', async () => {
    const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/filter`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}` },
      body: '[1, 2]',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_BAD_JSON');
  });
});

describe('lazyValidatorFactory', () => {
  async function appWith(bodySchema: unknown) {
    const lazy = lazyValidatorFactory();
    const app = Fastify({
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
      schemaController: { compilersFactory: { buildValidator: lazy.buildValidator as never } },
    });
    app.post('/x', { schema: { body: bodySchema } }, async () => ({ ok: true }));
    await app.ready();
    return { app, lazy };
  }

  it('validates with the app ajv options, without coercing types', async () => {
    const { app } = await appWith({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] });
    expect((await app.inject({ method: 'POST', url: '/x', payload: { n: 1 } })).statusCode).toBe(200);
    const wrong = await app.inject({ method: 'POST', url: '/x', payload: { n: '1' } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ code: 'FST_ERR_VALIDATION', message: 'body/n must be integer' });
    expect((await app.inject({ method: 'POST', url: '/x', payload: {} })).statusCode).toBe(400);
    await app.close();
  });

  it('reports a broken schema when compiled, not at start-up', async () => {
    const { app, lazy } = await appWith({ type: 'not-a-type' });
    expect(() => lazy.validators.compileAll()).toThrow();
    await app.close();
  });
});
