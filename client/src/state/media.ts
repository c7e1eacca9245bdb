/**
 * Media: uploads with progress, and downloads as blob URLs. Authenticated media (Matrix 1.11)
 * needs the access token in a header, which <img src> cannot send: we fetch and cache blobs.
 */
import type { MatrixClient } from 'matrix-js-sdk';

const cache = new Map<string, Promise<string>>();

export function mediaHttpUrl(client: MatrixClient, mxc: string, thumb?: { w: number; h: number }): string | null {
  return thumb
    ? client.mxcUrlToHttp(mxc, thumb.w, thumb.h, 'scale', false, true, true)
    : client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true);
}

/** A blob: URL for the media (or its thumbnail); falls back to the full file when no thumbnail. */
export function mediaBlobUrl(client: MatrixClient, mxc: string, thumb?: { w: number; h: number }): Promise<string> {
  const key = `${mxc}|${thumb ? `${thumb.w}x${thumb.h}` : 'full'}`;
  let pending = cache.get(key);
  if (!pending) {
    pending = fetchBlobUrl(client, mxc, thumb).catch((error: unknown) => {
      cache.delete(key);
      if (thumb) return mediaBlobUrl(client, mxc);
      throw error;
    });
    cache.set(key, pending);
  }
  return pending;
}

async function fetchBlobUrl(client: MatrixClient, mxc: string, thumb?: { w: number; h: number }): Promise<string> {
  const url = mediaHttpUrl(client, mxc, thumb);
  if (!url) throw new Error(`not a media URL: ${mxc}`);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken() ?? ''}` } });
  if (!response.ok) throw new Error(`media download failed (${response.status})`);
  return URL.createObjectURL(await response.blob());
}

export interface UploadResult {
  url: string;
  info: Record<string, unknown>;
}

/** Uploads a file, reporting progress (0..1); adds width/height for images and duration for media. */
export async function uploadFile(
  client: MatrixClient,
  file: Blob,
  name: string,
  onProgress?: (fraction: number) => void,
): Promise<UploadResult> {
  const info: Record<string, unknown> = { mimetype: file.type || 'application/octet-stream', size: file.size };
  if (file.type.startsWith('image/')) Object.assign(info, await imageSize(file));
  if (file.type.startsWith('video/')) Object.assign(info, await videoSize(file));
  const response = await client.uploadContent(file, {
    name,
    type: file.type || 'application/octet-stream',
    includeFilename: true,
    progressHandler: ({ loaded, total }) => onProgress?.(total > 0 ? loaded / total : 0),
  });
  onProgress?.(1);
  return { url: response.content_uri, info };
}

function imageSize(file: Blob): Promise<{ w?: number; h?: number }> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      resolve({ w: img.naturalWidth, h: img.naturalHeight });
      URL.revokeObjectURL(url);
    };
    img.onerror = () => {
      resolve({});
      URL.revokeObjectURL(url);
    };
    img.src = url;
  });
}

function videoSize(file: Blob): Promise<{ w?: number; h?: number; duration?: number }> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const video = document.createElement('video');
    video.preload = 'metadata';
    video.onloadedmetadata = () => {
      resolve({ w: video.videoWidth, h: video.videoHeight, duration: Math.round(video.duration * 1000) || undefined });
      URL.revokeObjectURL(url);
    };
    video.onerror = () => {
      resolve({});
      URL.revokeObjectURL(url);
    };
    video.src = url;
  });
}
