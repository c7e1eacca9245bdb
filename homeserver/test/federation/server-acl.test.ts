/**
 * Server ACLs: the glob rules of `m.room.server_acl`, and `checkServerAcl` on a real room whose
 * ACL was set through the client API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkServerAcl, globToRegExp, serverAllowedByAcl } from '../../src/federation/server-acl.js';
import { MatrixError } from '../../src/http/errors.js';
import { client, enc } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

describe('serverAllowedByAcl', () => {
  it('allows nothing without an allow list, and what the allow globs match', () => {
    expect(serverAllowedByAcl({}, 'example.org')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['*'] }, 'example.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['*.example.org'] }, 'matrix.example.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['*.example.org'] }, 'example.org')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['ex?mple.org'] }, 'exAmple.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['ex?mple.org'] }, 'exaample.org')).toBe(false);
  });

  it('lets deny win over allow, ignores ports and case', () => {
    const acl = { allow: ['*'], deny: ['evil.com', '*.evil.com'] };
    expect(serverAllowedByAcl(acl, 'evil.com')).toBe(false);
    expect(serverAllowedByAcl(acl, 'evil.com:8448')).toBe(false);
    expect(serverAllowedByAcl(acl, 'EVIL.com:1234')).toBe(false);
    expect(serverAllowedByAcl(acl, 'sub.evil.com')).toBe(false);
    expect(serverAllowedByAcl(acl, 'notevil.com')).toBe(true);
  });

  it('denies IP literals only when allow_ip_literals is false', () => {
    expect(serverAllowedByAcl({ allow: ['*'] }, '1.2.3.4')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: false }, '1.2.3.4:8448')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: false }, '[::1]:8448')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: 'no' }, '1.2.3.4')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['1.2.3.*'] }, '1.2.3.4:8448')).toBe(true);
  });

  it('treats regular-expression characters in globs literally and ignores non-string entries', () => {
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a+(b)').test('a+(b)')).toBe(true);
    expect(serverAllowedByAcl({ allow: [42, null, 'ok.org'] as never }, 'ok.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: 'ok.org' as never }, 'ok.org')).toBe(false);
  });
});

describe('checkServerAcl on a real room', () => {
  let hs: TestHomeserver;
  let alice: RegisteredUser;
  const api = client(() => hs.baseUrl);

  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true\nenable_registration_without_verification: true', 'acl.test');
    alice = await registerUser(hs.baseUrl, 'alice');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('allows everyone without an ACL, then follows the current ACL', async () => {
    const roomId = (await api.ok(alice, 'POST', '/createRoom', {})).room_id as string;
    await expect(checkServerAcl(hs.server.ctx, roomId, 'evil.com')).resolves.toBeUndefined();
    await api.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.server_acl/`, { allow: ['*'], deny: ['evil.com'] });
    await expect(checkServerAcl(hs.server.ctx, roomId, 'good.org:8448')).resolves.toBeUndefined();
    const err = await checkServerAcl(hs.server.ctx, roomId, 'evil.com:8448').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatrixError);
    expect((err as MatrixError).statusCode).toBe(403);
    expect((err as MatrixError).errcode).toBe('M_FORBIDDEN');
    // A later ACL replaces the earlier one.
    await api.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.server_acl/`, { allow: ['*'] });
    await expect(checkServerAcl(hs.server.ctx, roomId, 'evil.com')).resolves.toBeUndefined();
  });
});
