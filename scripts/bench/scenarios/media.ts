/**
 * media: `uploads` JPEG images of about `kib` KiB through POST /_matrix/media/v3/upload, one after
 * another and then `concurrency` at once (MB/s, uploads/s, latency); then thumbnails of
 * `thumbnails` of them through GET /_matrix/client/v1/media/thumbnail (the first request makes the
 * thumbnail, the second should be served from storage). Every upload is downloaded again and
 * compared byte for byte. A server that does not advertise v1.11 (when those authenticated
 * endpoints arrived) is read through the deprecated /_matrix/media/v3 thumbnail and download.
 * A server without the media endpoints (404 / M_UNRECOGNIZED) is reported as "unavailable", not
 * as a failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { Pool } from 'undici';
import { expectStatus, Homeserver, seg, type Account } from '../client.js';
import { CountMismatch, Meter, newUsers, type ScenarioContext, type ScenarioResult } from '../context.js';
import { forEachConcurrent, now, round, summarize } from '../stats.js';

const UPLOAD = '/_matrix/media/v3/upload';

async function makeImages(count: number, kib: number): Promise<Buffer[]> {
  // Noise JPEGs at quality 90 take about 0.85 bytes a pixel: aim the size, 4:3.
  const pixels = (kib * 1024) / 0.85;
  const width = Math.max(16, Math.round(Math.sqrt((pixels * 4) / 3)));
  const height = Math.max(16, Math.round((width * 3) / 4));
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
  }
  return out;
}

async function uploadLoop(hs: Homeserver, pool: Pool, user: Account, images: Buffer[], concurrency: number) {
  const uris: string[] = new Array<string>(images.length);
  const latencies: number[] = [];
  const t0 = now();
  await forEachConcurrent(images.length, concurrency, async (i) => {
    const reply = await hs.request(pool, 'POST', `${UPLOAD}?filename=bench-${i}.jpg`, { token: user.accessToken, raw: images[i]!, contentType: 'image/jpeg' });
    expectStatus(reply, 200, 'upload');
    uris[i] = (reply.json as { content_uri: string }).content_uri;
    latencies.push(reply.ms);
  });
  const seconds = (now() - t0) / 1000;
  const bytes = images.reduce((n, b) => n + b.length, 0);
  return {
    uris,
    figures: {
      uploads: images.length,
      concurrency,
      seconds: round(seconds),
      uploads_per_s: round(images.length / seconds, 2),
      mb_per_s: round(bytes / 1024 / 1024 / seconds, 2),
      latency_ms: summarize(latencies),
    },
  };
}

/** Spec versions are `vX.Y`: does the server advertise v1.11 (authenticated media) or later? */
function advertisesAuthenticatedMedia(versions: unknown): boolean {
  if (!Array.isArray(versions)) return false;
  return versions.some((v) => {
    const m = typeof v === 'string' ? /^v(\d+)\.(\d+)$/.exec(v) : null;
    return m !== null && (Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 11));
  });
}

function mxcPath(uri: string): string {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(uri);
  if (!m) throw new CountMismatch(`media: ${uri} is not an mxc:// URI`);
  return `${seg(m[1]!)}/${seg(m[2]!)}`;
}

export async function mediaScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.sizes as { uploads: number; kib: number; concurrency: number; thumbnails: number };
  const { hs } = ctx.target;
  const [user] = await newUsers(ctx, 'media', 1);

  const probe = await hs.request(ctx.target.pool, 'POST', `${UPLOAD}?filename=probe.txt`, { token: user!.accessToken, raw: Buffer.from('probe'), contentType: 'text/plain' });
  const errcode = (probe.json as { errcode?: string }).errcode;
  // M_NOT_JSON: a server without the endpoint that parses every body as JSON before routing.
  if (probe.status === 404 || probe.status === 405 || errcode === 'M_UNRECOGNIZED' || errcode === 'M_NOT_JSON') {
    ctx.log(`media: the server has no upload endpoint (${probe.status} ${errcode ?? ''}): unavailable`);
    return { status: 'unavailable', reason: `POST ${UPLOAD} answered ${probe.status} ${errcode ?? ''}`.trim() };
  }
  expectStatus(probe, 200, 'upload (probe)');
  const versions = await hs.request(ctx.target.pool, 'GET', '/_matrix/client/versions');
  const downloadBase = advertisesAuthenticatedMedia((versions.json as { versions?: unknown }).versions)
    ? '/_matrix/client/v1/media'
    : '/_matrix/media/v3';

  ctx.log(`media: making ${s.uploads * 2} images of about ${s.kib} KiB`);
  const images = await makeImages(s.uploads * 2, s.kib);
  const sequentialImages = images.slice(0, s.uploads);
  const concurrentImages = images.slice(s.uploads);
  const pool = hs.pool({ connections: s.concurrency });

  ctx.log(`media: ${s.uploads} uploads one after another`);
  let meter = await Meter.start(ctx);
  const seq = await uploadLoop(hs, pool, user!, sequentialImages, 1);
  const sequential: Record<string, unknown> = { ...seq.figures, ...(await meter.stop(s.uploads, 'upload')) };
  ctx.log(`media: ${s.uploads} uploads, ${s.concurrency} at once`);
  meter = await Meter.start(ctx);
  const conc = await uploadLoop(hs, pool, user!, concurrentImages, s.concurrency);
  const concurrent: Record<string, unknown> = { ...conc.figures, ...(await meter.stop(s.uploads, 'upload')) };
  const uris = [...seq.uris, ...conc.uris];
  if (new Set(uris).size !== uris.length) throw new CountMismatch('media: two uploads got the same content URI');

  ctx.log(`media: thumbnails of ${s.thumbnails} images, twice each`);
  const firstMs: number[] = [];
  const againMs: number[] = [];
  let thumbBytes = 0;
  for (const uri of uris.slice(0, s.thumbnails)) {
    for (const times of [firstMs, againMs]) {
      const reply = await hs.request(pool, 'GET', `${downloadBase}/thumbnail/${mxcPath(uri)}?width=96&height=96&method=crop`, {
        token: user!.accessToken,
      });
      expectStatus(reply, 200, 'thumbnail');
      if (reply.bytes === 0) throw new CountMismatch(`media: an empty thumbnail of ${uri}`);
      thumbBytes = reply.bytes;
      times.push(reply.ms);
    }
  }

  ctx.log('media: downloading every upload to compare');
  const downloadMs: number[] = [];
  let matching = 0;
  const mismatched: string[] = [];
  await forEachConcurrent(uris.length, s.concurrency, async (i) => {
    const res = await pool.request({ path: `${hs.prefix}${downloadBase}/download/${mxcPath(uris[i]!)}`, method: 'GET', headers: { authorization: `Bearer ${user!.accessToken}` } });
    const t0 = now();
    const body = Buffer.from(await res.body.arrayBuffer());
    downloadMs.push(now() - t0);
    if (res.statusCode === 200 && sha(body) === sha(images[i]!)) matching++;
    else mismatched.push(`${uris[i]} (${res.statusCode}, ${body.length} bytes)`);
  });
  const counts = { uploaded: uris.length, downloaded_identical: matching };
  if (matching !== uris.length) {
    throw new CountMismatch(`media: ${uris.length - matching} of ${uris.length} uploads do not come back identical: ${mismatched.slice(0, 3).join(', ')}`);
  }

  const result: ScenarioResult = {
    status: 'ok',
    download_api: downloadBase,
    image_kib: round(images.reduce((n, b) => n + b.length, 0) / images.length / 1024, 1),
    sequential,
    concurrent,
    thumbnail_first_ms: summarize(firstMs),
    thumbnail_again_ms: summarize(againMs),
    thumbnail_bytes: thumbBytes,
    counts,
  };
  if (ctx.ceiling) {
    ctx.log('media: the same uploads against the ceiling server');
    const ceilingHs = new Homeserver(ctx.ceiling.baseUrl);
    const cpool = ceilingHs.pool({ connections: s.concurrency });
    const cSeq = await uploadLoop(ceilingHs, cpool, user!, sequentialImages, 1);
    const cConc = await uploadLoop(ceilingHs, cpool, user!, concurrentImages, s.concurrency);
    await ceilingHs.close();
    result.ceiling = { sequential: cSeq.figures, concurrent: cConc.figures };
    sequential.share_of_ceiling = round(seq.figures.mb_per_s / cSeq.figures.mb_per_s, 3);
    concurrent.share_of_ceiling = round(conc.figures.mb_per_s / cConc.figures.mb_per_s, 3);
  }
  return result;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
