/** Events as a filter asks for them: client format (with `event_fields`) or federation format. */
import { formatEvents } from '../api/client/event-format.js';
import type { JsonObject, RoomEvent } from '../events/types.js';
import type { Storage } from '../storage/database.js';
import { pickEventFields, type Filter } from './filter.js';

export interface Viewer {
  userId: string;
  deviceId: string | undefined;
}

export async function formatForClient(
  storage: Storage,
  events: readonly RoomEvent[],
  filter: Pick<Filter, 'event_fields' | 'event_format'>,
  viewer: Viewer,
  includeRoomId = false,
  /** The events' redactions, when read with them (FormatOptions.redactedBy). */
  redactedBy?: ReadonlyMap<string, string>,
): Promise<JsonObject[]> {
  if (filter.event_format === 'federation') return events.map((e) => e.pdu);
  const formatted = await formatEvents(storage, events, { includeRoomId, viewer, redactedBy });
  return formatted.map((e) => pickEventFields(e as unknown as JsonObject, filter.event_fields));
}

/** Stripped state (spec "Stripped state"): what an invitee or knocker sees of a room. */
export function strippedEvent(event: RoomEvent): JsonObject {
  return { type: event.type, state_key: event.state_key ?? '', content: event.content, sender: event.sender };
}
