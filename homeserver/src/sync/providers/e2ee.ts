/**
 * The end-to-end encryption streams of /sync.
 *
 * to_device: the requesting device's pending messages between `since` and the response's
 * position, at most TO_DEVICE_LIMIT per response (the response's position then stops at the last
 * one sent, so the next sync continues from there). Syncing with a token acknowledges every
 * message up to its to_device position: only then are those messages deleted, so a response lost
 * on the way is sent again from the same token (storage/to-device-store.ts).
 *
 * device_lists: `changed`/`left` between the tokens (incremental syncs only; e2ee/device-lists.ts),
 * and for the requesting device its one-time key counts and unused fallback key algorithms.
 */
import { deviceListChanges } from '../../e2ee/device-lists.js';
import type { SyncProvider } from '../types.js';

/** The spec's recommendation. */
export const TO_DEVICE_LIMIT = 100;

export const toDeviceProvider: SyncProvider = {
  stream: 'to_device',
  currentPosition: (ctx) => ctx.storage.toDevice.currentPosition(),
  async fill(req, out) {
    if (req.deviceId === undefined) return;
    const store = req.ctx.storage.toDevice;
    const since = req.since?.to_device ?? 0;
    if (req.since) await store.acknowledge(req.userId, req.deviceId, since);
    if (since >= req.to.to_device) return; // nothing numbered after the token
    const messages = await store.pending(req.userId, req.deviceId, since, req.to.to_device, TO_DEVICE_LIMIT + 1);
    if (messages.length > TO_DEVICE_LIMIT) {
      messages.length = TO_DEVICE_LIMIT;
      // The rest comes with the next sync: the token stops after the last message sent.
      req.to.to_device = messages[TO_DEVICE_LIMIT - 1]!.position;
    }
    if (messages.length === 0) return;
    out.body.to_device.events.push(...messages.map((m) => m.event));
    out.hasContent = true;
  },
};

export const deviceListsProvider: SyncProvider = {
  stream: 'device_lists',
  currentPosition: (ctx) => ctx.storage.deviceLists.currentPosition(),
  async fill(req, out) {
    const storage = req.ctx.storage;
    if (req.deviceId !== undefined) {
      const [counts, fallbackTypes] = await Promise.all([
        storage.e2eKeys.oneTimeKeyCounts(req.userId, req.deviceId),
        storage.e2eKeys.unusedFallbackKeyTypes(req.userId, req.deviceId),
      ]);
      // signed_curve25519 is always there, 0 included: clients read its absence as "unknown".
      out.body.device_one_time_keys_count = { signed_curve25519: 0, ...counts };
      out.body.device_unused_fallback_key_types = fallbackTypes;
    }
    if (!req.since) return;
    const delta = await deviceListChanges(storage, req.userId, req.since, req.to);
    out.body.device_lists = delta;
    if (delta.changed.length > 0 || delta.left.length > 0) out.hasContent = true;
  },
};
