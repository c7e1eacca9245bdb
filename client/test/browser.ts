/**
 * Helpers for the web client's browser tests: a real headless Chromium (Debian's `chromium`)
 * driven by playwright-core, against a real Hearth that serves the built client at `/`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';

export const CHROMIUM = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SCREENSHOTS = `${ROOT}test-results`;

/** Bundles the client when its sources are newer than dist/client (as `npm start` does). */
export function buildClient(): void {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs', '--client'], { cwd: ROOT, stdio: 'inherit' });
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (bash .ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // A fake microphone (a beeping tone) that needs no permission prompt, for voice messages.
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export interface Person {
  name: string;
  userId: string;
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions seen on the page. */
  errors: string[];
}

export async function openPerson(browser: Browser, baseUrl: string, name: string, serverName: string): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, deviceScaleFactor: 1, colorScheme: 'light' });
  await context.grantPermissions(['microphone'], { origin: baseUrl });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location().url;
    // Registration is user-interactive auth: its first request answers 401 by design (spec).
    if (/status of 401/.test(message.text()) && url.endsWith('/_matrix/client/v3/register')) return;
    errors.push(`${message.text()} (${url})`);
  });
  page.on('pageerror', (error) => errors.push(`${error.name}: ${error.message}`));
  await page.goto(baseUrl);
  return { name, userId: `@${name}:${serverName}`, context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Let images that are still decoding settle, without waiting a fixed time.
  await page.waitForFunction('document.fonts.ready.then(() => true)');
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png` });
}

/** A small picture (a sunset over hills) made with sharp, as PNG bytes. */
export async function samplePicture(hue: 'warm' | 'cool' = 'warm', width = 800, height = 520): Promise<Buffer> {
  const [top, bottom, sun] = hue === 'warm' ? ['#f97316', '#fde68a', '#fff7ed'] : ['#0ea5e9', '#a7f3d0', '#f0fdfa'];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${top}"/><stop offset="1" stop-color="${bottom}"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>
    <circle cx="${width * 0.68}" cy="${height * 0.42}" r="${height * 0.16}" fill="${sun}" opacity="0.9"/>
    <path d="M0 ${height * 0.75} Q ${width * 0.25} ${height * 0.55} ${width * 0.5} ${height * 0.72} T ${width} ${height * 0.68} V ${height} H 0 Z" fill="#0f766e"/>
    <path d="M0 ${height * 0.86} Q ${width * 0.3} ${height * 0.72} ${width * 0.62} ${height * 0.86} T ${width} ${height * 0.84} V ${height} H 0 Z" fill="#134e4a"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
