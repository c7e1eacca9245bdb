/**
 * Server-Server API, "Transactions": `PUT /_matrix/federation/v1/send/{txnId}`.
 *
 * A transaction carries at most 50 PDUs and 100 EDUs from one server. Each PDU goes through the
 * room event pipeline's receive path (rooms/receive.ts); PDUs of one room in the order sent,
 * rooms side by side. The answer says per PDU whether it was accepted (`{}`) or why not
 * (`{error}`); one bad PDU never fails the others or the transaction. EDUs go to
 * federation/edus.ts. The answer is stored by (origin, txn id): a retry gets it again without
 * anything being processed twice.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { computeEventId } from '../../events/event-id.js';
import type { JsonObject, JsonValue } from '../../events/types.js';
import { handleIncomingEdu } from '../../federation/edus.js';
import { checkServerAcl } from '../../federation/server-acl.js';
import type { Edu } from '../../federation/runtime.js';
import { badJson, MatrixError } from '../../http/errors.js';
import { requireServer } from '../../http/x-matrix.js';
import { getRoomVersion } from '../../rooms/room-versions.js';
import { ReceivedTransactionsStore } from '../../storage/received-transactions-store.js';
import { pathParam } from '../client/params.js';

export const MAX_PDUS_PER_TRANSACTION = 50;
export const MAX_EDUS_PER_TRANSACTION = 100;
/** 50 PDUs of 64 KiB and 100 EDUs, with room to spare for the JSON around them. */
const MAX_TRANSACTION_BYTES = 12 * 1024 * 1024;

type PduResult = { error?: string };

export function registerTransactions(app: FastifyInstance, ctx: ServerContext): void {
  const receiver = new TransactionReceiver(ctx);
  app.put(`/_matrix/federation/v1/send/:txnId`, { bodyLimit: MAX_TRANSACTION_BYTES }, async (req) => {
    const origin = await requireServer(ctx, req);
    return receiver.handle(origin, pathParam(req, 'txnId'), req.body);
  });
}

/** The transaction endpoint behind authentication: checks, idempotency, processing. */
export class TransactionReceiver {
  private readonly store: ReceivedTransactionsStore;
  /** Transactions being processed, so that a retry arriving meanwhile waits for the same answer. */
  private readonly inFlight = new Map<string, Promise<JsonObject>>();

  constructor(private readonly ctx: ServerContext) {
    this.store = new ReceivedTransactionsStore(ctx.storage);
  }

  /** Answers a transaction from `origin` (already authenticated). Throws MatrixError for a bad body. */
  async handle(origin: string, txnId: string, body: unknown): Promise<JsonObject> {
    if (!isObject(body)) throw badJson('The transaction must be a JSON object');
    const pdus = body.pdus ?? [];
    const edus = body.edus ?? [];
    if (!Array.isArray(pdus)) throw badJson('pdus must be an array');
    if (!Array.isArray(edus)) throw badJson('edus must be an array');
    if (pdus.length > MAX_PDUS_PER_TRANSACTION || edus.length > MAX_EDUS_PER_TRANSACTION) {
      throw badJson(`A transaction may carry at most ${MAX_PDUS_PER_TRANSACTION} PDUs and ${MAX_EDUS_PER_TRANSACTION} EDUs`);
    }

    const key = JSON.stringify([origin, txnId]);
    const running = this.inFlight.get(key);
    if (running) return running;
    const earlier = await this.store.getTransactionResponse(origin, txnId);
    if (earlier) return earlier;
    const work = (async () => {
      const response = await processTransaction(this.ctx, origin, pdus, edus);
      await this.store.recordTransactionResponse(origin, txnId, response);
      return response;
    })();
    this.inFlight.set(key, work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(key);
    }
  }
}

async function processTransaction(ctx: ServerContext, origin: string, pdus: JsonValue[], edus: JsonValue[]): Promise<JsonObject> {
  const results: Record<string, PduResult> = {};
  // PDUs grouped by room, each room's in the order sent; rooms are processed side by side.
  const byRoom = new Map<string, JsonObject[]>();
  for (const pdu of pdus) {
    if (!isObject(pdu) || typeof pdu.room_id !== 'string') continue; // no room: nothing to answer for
    const list = byRoom.get(pdu.room_id) ?? [];
    list.push(pdu);
    byRoom.set(pdu.room_id, list);
  }
  await Promise.all(
    [...byRoom].map(async ([roomId, roomPdus]) => {
      for (const pdu of roomPdus) {
        try {
          const { eventId, result } = await receivePdu(ctx, origin, roomId, pdu);
          if (eventId) results[eventId] = result;
        } catch (err) {
          ctx.log.error({ err, origin, roomId }, 'receiving a PDU failed');
          const eventId = guessEventId(pdu);
          if (eventId) results[eventId] = { error: 'Internal error while processing the event' };
        }
      }
    }),
  );
  for (const edu of edus) {
    if (!isObject(edu) || typeof edu.edu_type !== 'string') continue;
    try {
      await handleIncomingEdu(ctx, origin, { edu_type: edu.edu_type, content: isObject(edu.content) ? edu.content : {} } satisfies Edu);
    } catch (err) {
      ctx.log.warn({ err, origin, eduType: edu.edu_type }, 'incoming EDU failed');
    }
  }
  return { pdus: results as unknown as JsonObject };
}

async function receivePdu(
  ctx: ServerContext,
  origin: string,
  roomId: string,
  pdu: JsonObject,
): Promise<{ eventId: string | undefined; result: PduResult }> {
  const versionId = await ctx.storage.rooms.getRoomVersion(roomId);
  const version = versionId ? getRoomVersion(versionId) : undefined;
  if (!versionId || !version) {
    const error = versionId ? `Unsupported room version ${versionId}` : `Unknown room ${roomId}`;
    return { eventId: guessEventId(pdu), result: { error } };
  }
  let eventId: string | undefined;
  try {
    eventId = computeEventId(pdu, version);
  } catch {
    eventId = guessEventId(pdu);
  }
  try {
    await checkServerAcl(ctx, roomId, origin);
  } catch (err) {
    if (err instanceof MatrixError) return { eventId, result: { error: err.message } };
    throw err;
  }
  try {
    const received = await ctx.pipeline.receive(pdu, { origin, roomVersion: version });
    const id = received.eventId || eventId;
    if (received.outcome === 'rejected') return { eventId: id, result: { error: received.reason ?? 'rejected' } };
    return { eventId: id, result: {} };
  } catch (err) {
    ctx.log.error({ err, origin, eventId }, 'receiving a PDU failed');
    return { eventId, result: { error: 'Internal error while processing the event' } };
  }
}

/** For PDUs whose room version is unknown: the v1/v2 `event_id`, else the v4+ reference hash id. */
function guessEventId(pdu: JsonObject): string | undefined {
  if (typeof pdu.event_id === 'string') return pdu.event_id;
  try {
    return computeEventId(pdu, getRoomVersion('11')!);
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
