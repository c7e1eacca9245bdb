/**
 * The tables of migration 0012 on both engines (storage/federation-queues-store.ts): the outbox
 * in order per destination and kind, the named marks, our users' device list stream ids, remote
 * users' device lists recorded in the device_lists stream, and OpenID tokens; all surviving a
 * reopen of the database.
 */
import { expect, it } from 'vitest';
import { markDeviceListsChanged } from '../../src/storage/device-lists-store.js';
import { federationQueuesOf, OpenIdTokensStore } from '../../src/storage/federation-queues-store.js';
import { describeEachEngine } from '../helpers/databases.js';

describeEachEngine('federation queues store', (getStorage, ctx) => {
  it('keeps the outbox per destination and kind, in order, across a reopen', async () => {
    const store = federationQueuesOf(getStorage());
    await store.enqueue([
      { destination: 'b.test', kind: 'pdu', value: '$1' },
      { destination: 'c.test', kind: 'pdu', value: '$1' },
      { destination: 'b.test', kind: 'edu', value: { edu_type: 'm.receipt', content: { x: 1 } } },
      { destination: 'b.test', kind: 'pdu', value: '$2' },
    ]);
    await store.enqueue([{ destination: 'b.test', kind: 'pdu', value: '$3' }], { name: 'pdus', position: 42 });
    expect(await store.pendingDestinations().then((d) => d.sort())).toEqual(['b.test', 'c.test']);

    const reopened = federationQueuesOf(await ctx.reopen());
    const pdus = await reopened.peek('b.test', 'pdu', 2);
    expect(pdus.map((r) => r.value)).toEqual(['$1', '$2']);
    expect((await reopened.peek('b.test', 'edu', 10)).map((r) => r.value)).toEqual([{ edu_type: 'm.receipt', content: { x: 1 } }]);
    expect(await reopened.position('pdus')).toBe(42);
    expect(await reopened.position('other')).toBeUndefined();

    await reopened.remove(pdus.map((r) => r.id));
    expect((await reopened.peek('b.test', 'pdu', 10)).map((r) => r.value)).toEqual(['$3']);
    expect(await reopened.pendingCount('b.test')).toBe(2);
    expect(await reopened.pendingCount('c.test')).toBe(1);
  });

  it('numbers a user\'s outgoing device list updates and remembers the devices announced', async () => {
    const store = federationQueuesOf(getStorage());
    expect(await store.deviceStreamId('@a:x')).toBe(0);
    expect(await store.nextDeviceStream('@a:x', 2, ['D1', 'D2'])).toEqual({ prev: 0, first: 1 });
    expect(await store.nextDeviceStream('@a:x', 1, ['D2'])).toEqual({ prev: 2, first: 3 });
    expect(await store.deviceStreamId('@a:x')).toBe(3);
    expect(await store.announcedDevices('@a:x')).toEqual(['D2']);
    expect(await store.announcedDevices('@b:x')).toEqual([]);
  });

  it('stores remote device lists together with their device_lists stream entry', async () => {
    const storage = getStorage();
    const store = federationQueuesOf(storage);
    const before = await storage.deviceLists.currentPosition();
    await store.putRemoteDeviceList(
      { userId: '@r:remote.test', streamId: 7, devices: { D: { keys: { user_id: '@r:remote.test', device_id: 'D' } } }, masterKey: null, selfSigningKey: { usage: ['self_signing'] } },
      (trx) => markDeviceListsChanged(trx, storage.engine, ['@r:remote.test']),
    );
    const after = await storage.deviceLists.currentPosition();
    expect(after).toBe(before + 1);
    expect(await storage.deviceLists.changedUsers(before, after)).toEqual(['@r:remote.test']);
    expect(await store.remoteDeviceList('@r:remote.test')).toEqual({
      userId: '@r:remote.test',
      streamId: 7,
      devices: { D: { keys: { user_id: '@r:remote.test', device_id: 'D' } } },
      masterKey: null,
      selfSigningKey: { usage: ['self_signing'] },
    });
    expect((await store.remoteDeviceLists(['@r:remote.test', '@none:remote.test'])).size).toBe(1);
  });

  it('knows OpenID tokens until they expire', async () => {
    const tokens = new OpenIdTokensStore(getStorage().db);
    await tokens.create('tok1', '@a:x', Date.now() + 60_000);
    await tokens.create('old', '@a:x', Date.now() - 1);
    expect(await tokens.userOf('tok1')).toBe('@a:x');
    expect(await tokens.userOf('old')).toBeUndefined();
    expect(await tokens.userOf('tok1', Date.now() + 120_000)).toBeUndefined();
    expect(await tokens.userOf('nope')).toBeUndefined();
  });
});
