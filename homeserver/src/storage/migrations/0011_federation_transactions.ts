/**
 * Received federation transactions (`PUT /_matrix/federation/v1/send/{txnId}`): the response
 * given to each (origin, txn id), so that a retried transaction is answered the same way
 * without processing its PDUs and EDUs again.
 */
import type { Kysely } from 'kysely';
import type { Migration } from './runner.js';

export const migration0011: Migration = {
  version: 11,
  name: 'federation_transactions',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('received_transactions')
      .addColumn('origin', 'text', (c) => c.notNull())
      .addColumn('txn_id', 'text', (c) => c.notNull())
      .addColumn('response_json', 'text', (c) => c.notNull())
      .addColumn('received_ts', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('received_transactions_pk', ['origin', 'txn_id'])
      .execute();
    await db.schema.createIndex('received_transactions_ts').on('received_transactions').column('received_ts').execute();
  },
};
