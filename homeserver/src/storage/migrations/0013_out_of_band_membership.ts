/**
 * Stripped room state kept with membership events this server holds outside a room's DAG
 * (rooms/remote-membership.ts): the `invite_room_state` another server sent with an invite, or the
 * `knock_room_state` the resident server answered a knock with. /sync shows it to the invitee or
 * knocker (storage/memberships-store.ts strippedStateOf).
 *
 *   out_of_band_room_state   event_id (the invite or knock) → the stripped events as JSON.
 */
import type { Kysely } from 'kysely';
import type { Migration } from './runner.js';

export const migration0013: Migration = {
  version: 13,
  name: 'out_of_band_membership',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('out_of_band_room_state')
      .addColumn('event_id', 'text', (c) => c.primaryKey())
      .addColumn('room_id', 'text', (c) => c.notNull())
      .addColumn('state_json', 'text', (c) => c.notNull())
      .execute();
  },
};
