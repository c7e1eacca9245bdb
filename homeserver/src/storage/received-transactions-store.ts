/**
 * (F2) What the receiving side of federation remembers: the answer to each received transaction
 * (idempotency by origin and transaction id). Its table is not in schema.ts's `Database`; this
 * store types it itself over the shared connection.
 */
import type { Kysely } from 'kysely';
import type { JsonObject } from '../events/types.js';
import type { Storage } from './database.js';

interface ReceivedTransactionsTable {
  origin: string;
  txn_id: string;
  response_json: string;
  received_ts: number;
}

interface FederationTables {
  received_transactions: ReceivedTransactionsTable;
}

export class ReceivedTransactionsStore {
  private readonly db: Kysely<FederationTables>;

  constructor(storage: Pick<Storage, 'db'>) {
    this.db = storage.db as unknown as Kysely<FederationTables>;
  }

  /** The response given to an earlier transaction with this id from `origin`, if any. */
  async getTransactionResponse(origin: string, txnId: string): Promise<JsonObject | undefined> {
    const row = await this.db
      .selectFrom('received_transactions')
      .select('response_json')
      .where('origin', '=', origin)
      .where('txn_id', '=', txnId)
      .executeTakeFirst();
    return row ? (JSON.parse(row.response_json) as JsonObject) : undefined;
  }

  /** Remembers the response to a processed transaction (the first one stored wins). */
  async recordTransactionResponse(origin: string, txnId: string, response: JsonObject): Promise<void> {
    await this.db
      .insertInto('received_transactions')
      .values({ origin, txn_id: txnId, response_json: JSON.stringify(response), received_ts: Date.now() })
      .onConflict((oc) => oc.columns(['origin', 'txn_id']).doNothing())
      .execute();
  }
}
