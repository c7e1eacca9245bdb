/**
 * The one namespace prefix for every identifier Hearth adds on top of the Matrix spec
 * (room types, account data, event fields). Everything else is plain Matrix.
 */
export const NAMESPACE = 'org.hearth';

/** The room type (m.room.create `type`) of a user's moments room. */
export const MOMENTS_ROOM_TYPE = `${NAMESPACE}.moments`;
/** Account data pointing at the user's own moments room: `{ room_id }`. */
export const MOMENTS_ACCOUNT_DATA = `${NAMESPACE}.moments_room`;
/** Field of a moment post carrying its images: `[{ url, info, body }]` (up to 9). */
export const MOMENT_IMAGES_FIELD = `${NAMESPACE}.images`;
/** Reaction key of a like on a moment. */
export const LIKE_KEY = '❤️';
/** Voice message flag (MSC3245) and the extensible-events audio block (MSC1767). */
export const VOICE_FLAG = 'org.matrix.msc3245.voice';
export const AUDIO_BLOCK = 'org.matrix.msc1767.audio';
/** Up to this many images in one moment. */
export const MAX_MOMENT_IMAGES = 9;
