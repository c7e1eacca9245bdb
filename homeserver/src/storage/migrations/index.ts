/**
 * Every migration, in order. To change the schema, add `NNNN_name.ts` exporting a `Migration`
 * with the next version number and append it here; never edit a migration that has shipped.
 * Each one runs in its own transaction on both engines, so write it with kysely's schema builder
 * (or SQL both SQLite and PostgreSQL accept), branching on `engine` only where they differ.
 */
import { migration0001 } from './0001_event_core.js';
import { migration0002 } from './0002_accounts.js';
import { migration0003 } from './0003_rooms_client.js';
import { migration0004 } from './0004_sync.js';
import { migration0005 } from './0005_profiles.js';
import { migration0006 } from './0006_push.js';
import { migration0007 } from './0007_search_relations.js';
import { migration0008 } from './0008_e2ee.js';
import { migration0009 } from './0009_media.js';
import { migration0010 } from './0010_txn_ids_event_index.js';
import { migration0011 } from './0011_federation_transactions.js';
import { migration0012 } from './0012_federation_sender.js';
import { migration0013 } from './0013_out_of_band_membership.js';
import type { Migration } from './runner.js';

export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003, migration0004, migration0005, migration0006, migration0007, migration0008, migration0009, migration0010, migration0011, migration0012, migration0013];

export { migrate, latestSchemaVersion, readSchemaVersion, type Migration } from './runner.js';
