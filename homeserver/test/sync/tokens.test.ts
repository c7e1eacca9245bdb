/** Sync and pagination tokens, and the notifier's wake-up rules (no server needed). */
import { describe, expect, it } from 'vitest';
import { InMemoryNotifier } from '../../src/sync/notifier.js';
import { formatPaginationToken, formatSyncToken, parsePaginationToken, parseSyncToken, zeroPositions } from '../../src/sync/tokens.js';
import { matchesEventFilter, parseFilter, pickEventFields } from '../../src/sync/filter.js';

describe('sync tokens', () => {
  const positions = { events: 42, receipts: 3, account_data: 7, presence: 1, to_device: 0, device_lists: 0, typing: 5 };

  it('round-trips every stream position, events first', () => {
    const text = formatSyncToken({ positions, typingEpoch: 'abc' });
    expect(text).toBe('s42_3_7_1_0_0_5.abc');
    expect(parseSyncToken(text, 'abc').positions).toEqual(positions);
    // What /members?at= reads: the first number is the events position.
    expect(/^[a-z]?(\d+)/.exec(text)![1]).toBe('42');
  });

  it('reads a typing position of another run (before a restart) as 0', () => {
    const text = formatSyncToken({ positions, typingEpoch: 'old' });
    expect(parseSyncToken(text, 'new').positions).toEqual({ ...positions, typing: 0 });
  });

  it('reads missing streams as 0, and refuses what is not a token', () => {
    expect(parseSyncToken('s9_2', 'x').positions).toEqual({ ...zeroPositions(), events: 9, receipts: 2 });
    for (const bad of ['', 's', 'x1_2', 's1_a', 's-1', 's1_2.ABC!', `s${'9'.repeat(20)}`]) {
      expect(() => parseSyncToken(bad, 'x'), bad).toThrow(expect.objectContaining({ errcode: 'M_INVALID_PARAM' }));
    }
  });

  it('makes pagination tokens, and accepts sync tokens where they are expected', () => {
    expect(formatPaginationToken(17)).toBe('t17');
    // Backfilled history has negative positions (before everything held).
    expect(formatPaginationToken(-1)).toBe('t-1');
    expect(parsePaginationToken('t-12')).toBe(-12);
    expect(() => parsePaginationToken('s-12')).toThrow(expect.objectContaining({ statusCode: 400 }));
    expect(parsePaginationToken('t17')).toBe(17);
    expect(parsePaginationToken('s42_3_7_1_0_0_5.abc')).toBe(42);
    expect(() => parsePaginationToken('17')).toThrow(expect.objectContaining({ statusCode: 400 }));
  });
});

describe('notifier', () => {
  it('wakes waiters of a room, of a user, and of any of several rooms', async () => {
    const notifier = new InMemoryNotifier();
    const byRoom = notifier.wait({ userId: '@a:x', rooms: new Set(['!r:x']) }, 10_000);
    const byUser = notifier.wait({ userId: '@b:x', rooms: new Set() }, 10_000);
    const byRooms = notifier.wait({ userId: '@c:x', rooms: new Set(['!s:x']) }, 10_000);
    notifier.notify({ roomId: '!r:x' });
    notifier.notify({ userIds: ['@b:x'] });
    notifier.notify({ roomIds: ['!q:x', '!s:x'] });
    expect(await Promise.all([byRoom, byUser, byRooms])).toEqual([true, true, true]);
  });

  it('answers at once for a notice that came after `since`, and times out otherwise', async () => {
    const notifier = new InMemoryNotifier();
    const since = notifier.position;
    notifier.notify({ roomIds: ['!r:x'] });
    expect(await notifier.wait({ userId: '@a:x', rooms: new Set(['!r:x']) }, 10_000, undefined, since)).toBe(true);
    expect(await notifier.wait({ userId: '@a:x', rooms: new Set(['!other:x']) }, 20, undefined, since)).toBe(false);
    expect(notifier.waiting).toBe(0);
  });
});

describe('filters', () => {
  it('matches types with wildcards, with exclusions winning', () => {
    const filter = parseFilter({ presence: { types: ['m.*'], not_types: ['m.room.member'], not_senders: ['@spam:x'] } }).presence;
    expect(matchesEventFilter(filter, 'm.room.message', '@a:x')).toBe(true);
    expect(matchesEventFilter(filter, 'm.room.member', '@a:x')).toBe(false);
    expect(matchesEventFilter(filter, 'org.example', '@a:x')).toBe(false);
    expect(matchesEventFilter(filter, 'm.room.message', '@spam:x')).toBe(false);
    expect(matchesEventFilter({ types: ['m.room.mess*ge'] }, 'm.room.message', '@a:x')).toBe(true);
    expect(matchesEventFilter({ types: ['m.room.(x)'] }, 'm.room.x', '@a:x')).toBe(false);
  });

  it('keeps only the event fields asked for', () => {
    const event = { type: 'm.room.message', content: { body: 'hi', 'm.x': 1 }, sender: '@a:x' };
    expect(pickEventFields(event, ['type', 'content.body', 'content.m\\.x', 'unsigned.age'])).toEqual({
      type: 'm.room.message',
      content: { body: 'hi', 'm.x': 1 },
    });
  });
});
