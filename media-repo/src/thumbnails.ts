/**
 * Thumbnails with sharp (spec: Content repository, "Thumbnails").
 *
 * - `scale` keeps the aspect ratio and fits the image inside the requested box;
 * - `crop` fills the requested box exactly (centre crop), in the box's aspect ratio;
 * - never upscaled: an image smaller than the box keeps its own size (crop keeps the box's
 *   aspect ratio at the largest size the image allows);
 * - EXIF orientation is applied and all metadata (EXIF, GPS, ICC comments…) is dropped;
 * - JPEG sources give JPEG thumbnails, others PNG (keeps transparency); with `animated` and an
 *   animated source (GIF, WebP), an animated WebP.
 * Only raster formats are read (no SVG, PDF or raw camera files), and at most `maxPixels`.
 */
import type { Metadata } from 'sharp';
import { MatrixError } from '../../homeserver/src/http/errors.js';

export type ThumbnailMethod = 'crop' | 'scale';

// sharp (libvips) takes ~0.4 s and ~25 MB to load: loaded with the first image, not at start-up.
let sharpModule: Promise<typeof import('sharp')> | undefined;
const loadSharp = async () => (await (sharpModule ??= import('sharp'))).default;

export interface ImageProbe {
  /** Width and height after EXIF orientation. */
  width: number;
  height: number;
  format: string;
  pages: number;
}

export interface RenderedThumbnail {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
}

const READABLE_FORMATS = new Set(['jpeg', 'png', 'gif', 'webp', 'avif', 'heif', 'tiff']);
const ANIMATABLE_FORMATS = new Set(['gif', 'webp']);

export const cannotThumbnail = () =>
  new MatrixError(400, 'M_UNKNOWN', 'Cannot generate thumbnails for the requested content');
export const tooLargeToThumbnail = () => new MatrixError(413, 'M_TOO_LARGE', 'Content is too large to thumbnail');

/** Reads the image's header: 400 when it is not an image we read, 413 when it has too many pixels. */
export async function probeImage(data: Buffer, maxPixels: number): Promise<ImageProbe> {
  let meta: Metadata;
  const sharp = await loadSharp();
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw cannotThumbnail();
  }
  if (!meta.format || !READABLE_FORMATS.has(meta.format) || !meta.width || !meta.height) throw cannotThumbnail();
  const pages = meta.pages ?? 1;
  const pageHeight = meta.pageHeight ?? meta.height;
  if (meta.width * pageHeight > maxPixels) throw tooLargeToThumbnail();
  // An animation: sharp reports the frames stacked; one frame is the image's size.
  if (pages > 1) return { width: meta.width, height: pageHeight, format: meta.format, pages };
  const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height };
  return { width: oriented.width, height: oriented.height, format: meta.format, pages };
}

/** The size a thumbnail of `source` for the box `w`×`h` gets. */
export function thumbnailDimensions(
  source: { width: number; height: number },
  w: number,
  h: number,
  method: ThumbnailMethod,
): { width: number; height: number } {
  if (method === 'scale') {
    const ratio = Math.min(w / source.width, h / source.height, 1);
    return {
      width: Math.max(1, Math.round(source.width * ratio)),
      height: Math.max(1, Math.round(source.height * ratio)),
    };
  }
  const k = Math.min(1, source.width / w, source.height / h);
  return { width: Math.max(1, Math.round(w * k)), height: Math.max(1, Math.round(h * k)) };
}

/** Makes one thumbnail; `probe` is the source's probeImage result. */
export async function renderThumbnail(
  data: Buffer,
  probe: ImageProbe,
  box: { width: number; height: number; method: ThumbnailMethod; animated: boolean },
  maxPixels: number,
): Promise<RenderedThumbnail> {
  const animate = box.animated && probe.pages > 1 && ANIMATABLE_FORMATS.has(probe.format);
  const size = thumbnailDimensions(probe, box.width, box.height, box.method);
  const sharp = await loadSharp();
  try {
    let image = sharp(data, { limitInputPixels: maxPixels, animated: animate });
    if (!animate) image = image.autoOrient();
    image = image.resize(size.width, size.height, {
      fit: box.method === 'crop' ? 'cover' : 'inside',
      position: 'centre',
      withoutEnlargement: box.method === 'scale',
    });
    let contentType: string;
    if (animate) {
      image = image.webp({ quality: 80, effort: 2 });
      contentType = 'image/webp';
    } else if (probe.format === 'jpeg') {
      image = image.jpeg({ quality: 80, mozjpeg: true });
      contentType = 'image/jpeg';
    } else {
      image = image.png({ compressionLevel: 6 });
      contentType = 'image/png';
    }
    const { data: out, info } = await image.toBuffer({ resolveWithObject: true });
    return { data: out, contentType, width: info.width, height: info.pageHeight ?? info.height };
  } catch (err) {
    if (err instanceof MatrixError) throw err;
    throw cannotThumbnail();
  }
}
