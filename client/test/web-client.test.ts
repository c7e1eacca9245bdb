/**
 * The web client end to end, in a real headless Chromium against a fresh Hearth that serves the
 * built client at `/`: two people sign up in two browser contexts, become friends (request and
 * accept), chat with text and a picture, see typing and read receipts, send and play a voice
 * message, share a moment that the other likes and comments on, and find an old message by search.
 * Screenshots of the main screens go to test-results/.
 *
 * The steps run in order and build on each other (one story); each waits for what it expects.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestHomeserver, type TestHomeserver } from '../../homeserver/test/helpers/server.js';
import { buildClient, CHROMIUM, launchChromium, openPerson, samplePicture, screenshot, type Person } from './browser.js';

const SERVER_NAME = 'hearth.test';
const PASSWORD = 'a long enough password';
const STEP = 90_000;

let hs: TestHomeserver;
let browser: Browser;
let alice: Person;
let bob: Person;

/** Waits for a locator that matches (visible), the way a person looks for something on screen. */
async function see(page: Page, selector: string, hasText?: string | RegExp): Promise<void> {
  try {
    await page.locator(selector, hasText === undefined ? undefined : { hasText }).first().waitFor({ state: 'visible', timeout: 30_000 });
  } catch (error) {
    await screenshot(page, `failed-${selector.replace(/[^a-z]+/gi, '-').slice(0, 40)}`).catch(() => undefined);
    throw error;
  }
}

async function signUp(person: Person): Promise<void> {
  const page = person.page;
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.locator('hearth-login #username').fill(person.name);
  await page.locator('hearth-login #password').fill(PASSWORD);
  await page.locator('hearth-login #confirm').fill(PASSWORD);
  await page.locator('hearth-login button[type=submit]').click();
  await see(page, 'nav a[data-nav=friends]');
}

async function goTo(person: Person, view: 'chats' | 'friends' | 'moments' | 'search' | 'me'): Promise<void> {
  await person.page.locator(`nav a[data-nav=${view}]`).click();
}

async function openChatWith(person: Person, friend: Person): Promise<void> {
  await goTo(person, 'friends');
  await person.page.locator(`hearth-friends [data-friend="${friend.userId}"]`).click();
  await see(person.page, 'hearth-room hearth-composer textarea');
}

async function send(person: Person, text: string, shown = text): Promise<void> {
  const box = person.page.locator('hearth-composer textarea');
  await box.fill(text);
  await box.press('Enter');
  await see(person.page, 'hearth-timeline .msg.own .bubble', shown);
}

// CI installs Chromium (.ci/run) and must run these; elsewhere they skip, saying why.
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) console.warn(`web client browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);

describe.skipIf(!haveChromium && !process.env.CI)('web client in Chromium', () => {
  beforeAll(async () => {
    buildClient();
    hs = await startTestHomeserver(
      [
        'enable_registration: true',
        'user_directory: {enabled: true, search_all_users: true}',
        // the search step sends a burst of messages through the API
        'rc_message: {per_second: 1000, burst_count: 1000}',
      ].join('\n'),
      SERVER_NAME,
    );
    browser = await launchChromium();
    alice = await openPerson(browser, hs.baseUrl, 'alice', SERVER_NAME);
    bob = await openPerson(browser, hs.baseUrl, 'bob', SERVER_NAME);
  });

  afterAll(async () => {
    await browser?.close();
    await hs?.stop();
  });

  it('serves the client at / without shadowing the Matrix API', async () => {
    const index = await fetch(`${hs.baseUrl}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toContain('text/html');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const route = await fetch(`${hs.baseUrl}/friends`);
    expect(await route.text()).toContain('<hearth-app>');
    const unknown = await fetch(`${hs.baseUrl}/_matrix/client/v3/no-such-endpoint`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
    const versions = await fetch(`${hs.baseUrl}/_matrix/client/versions`);
    expect(versions.status).toBe(200);
    const missingAsset = await fetch(`${hs.baseUrl}/assets/missing.js`);
    expect(missingAsset.status).toBe(404);
    // Hashed bundle files are immutable; the page revalidates by ETag.
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await (await fetch(`${hs.baseUrl}/`)).text())?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${hs.baseUrl}${script}`);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.headers.get('content-type')).toContain('javascript');
    const again = await fetch(`${hs.baseUrl}/`, { headers: { 'if-none-match': index.headers.get('etag')! } });
    expect(again.status).toBe(304);
    // Nothing outside the bundle folder, and the discovery documents stay the API's.
    const escape = await fetch(`${hs.baseUrl}/..%2f..%2fpackage.json`);
    expect(await escape.text()).not.toContain('"name": "hearth"');
    const wellKnown = await fetch(`${hs.baseUrl}/.well-known/matrix/client`);
    expect(wellKnown.headers.get('content-type')).toContain('application/json');
  });

  it('signs two people up in two browsers and keeps the session across a reload', { timeout: STEP }, async () => {
    await see(alice.page, 'hearth-login form');
    await alice.page.locator('hearth-login').getByRole('tab', { name: 'Create account' }).click();
    await screenshot(alice.page, '01-sign-up');
    await alice.page.locator('hearth-login').getByRole('tab', { name: 'Sign in' }).click();
    await signUp(alice);
    await signUp(bob);
    await alice.page.reload();
    await see(alice.page, 'nav a[data-nav=friends]');
    await screenshot(alice.page, '02-empty-chats');
  });

  it('sets a display name and a status line on the profile page', { timeout: STEP }, async () => {
    await goTo(alice, 'me');
    await alice.page.locator('hearth-profile #displayname').fill('Alice Liddell');
    await alice.page.locator('hearth-profile #displayname').press('Enter');
    await alice.page.locator('hearth-profile #status').fill('Down the rabbit hole');
    await alice.page.locator('hearth-profile #status').press('Enter');
    await see(alice.page, 'hearth-profile .me .name', 'Alice Liddell');
    await see(alice.page, 'hearth-profile .me em', 'Down the rabbit hole');
    await goTo(bob, 'me');
    await bob.page.locator('hearth-profile #displayname').fill('Bob Marley');
    await bob.page.locator('hearth-profile #displayname').press('Enter');
    await see(bob.page, 'hearth-profile .me .name', 'Bob Marley');
    await screenshot(alice.page, '03-profile');
  });

  it('becomes friends through a request and an accept, both arriving live', { timeout: STEP }, async () => {
    await goTo(alice, 'friends');
    await goTo(bob, 'friends');
    await alice.page.locator('hearth-friends input[type=search]').fill('bob');
    await alice.page.locator(`hearth-friends [data-user="${bob.userId}"] button`, { hasText: 'Add friend' }).click();
    await see(alice.page, `hearth-friends [data-pending="${bob.userId}"]`);
    // Bob's page shows the request without a reload.
    await see(bob.page, `hearth-friends [data-request="${alice.userId}"]`);
    await screenshot(bob.page, '04-friend-request');
    await bob.page.locator(`hearth-friends [data-request="${alice.userId}"] button`, { hasText: 'Accept' }).click();
    await see(bob.page, `hearth-friends [data-friend="${alice.userId}"]`);
    await see(alice.page, `hearth-friends [data-friend="${bob.userId}"]`);
    await alice.page.locator('hearth-friends input[type=search]').fill('');
    // Friends see each other's presence and status line.
    await see(bob.page, `hearth-friends [data-friend="${alice.userId}"]`, 'Down the rabbit hole');
    await screenshot(alice.page, '05-friends');
  });

  it('chats with text, sees typing and read receipts, and sends a picture', { timeout: STEP }, async () => {
    await openChatWith(alice, bob);
    await send(alice, 'Remember the pineapple pizza from last summer?');
    await send(alice, 'Hi Bob!');
    await send(alice, 'Are you coming **tonight**?', 'Are you coming tonight?');
    // Markdown arrives as formatted_body.
    await openChatWith(bob, alice);
    await see(bob.page, 'hearth-timeline .bubble strong', 'tonight');
    // Bob has the chat open: Alice sees that he read her last message.
    await see(alice.page, `hearth-timeline .readers[data-readers~="${bob.userId}"]`);
    // Bob types: Alice sees it.
    await bob.page.locator('hearth-composer textarea').pressSequentially('Sure, see you at', { delay: 20 });
    await see(alice.page, 'hearth-room .typing', 'Bob Marley is typing');
    await bob.page.locator('hearth-composer textarea').pressSequentially(' eight 🎉');
    await bob.page.locator('hearth-composer textarea').press('Enter');
    await see(alice.page, 'hearth-timeline .msg:not(.own) .bubble', 'Sure, see you at eight');
    await see(alice.page, 'hearth-room .typing:empty');
    // A picture through the attach button: Bob sees a thumbnail that opens full size.
    await alice.page.locator('hearth-composer input[type=file]').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: await samplePicture() });
    await see(alice.page, 'hearth-timeline .msg.own hearth-image img');
    await see(bob.page, 'hearth-timeline .msg:not(.own) hearth-image img');
    await see(alice.page, `hearth-timeline .readers[data-readers~="${bob.userId}"]`);
    await screenshot(alice.page, '06-chat');
    await bob.page.locator('hearth-timeline .msg:not(.own) hearth-image button.thumb').last().click();
    await see(bob.page, 'hearth-image .lightbox img.full');
    await screenshot(bob.page, '07-image-full-size');
    await bob.page.keyboard.press('Escape');
    await bob.page.locator('hearth-image .lightbox').last().waitFor({ state: 'detached' });
  });

  it('records a voice message and plays it back', { timeout: STEP }, async () => {
    await bob.page.getByRole('button', { name: 'Record a voice message' }).click();
    // Record until the clock shows at least a second and a half (the fake microphone beeps).
    await bob.page.waitForFunction(
      `(() => { const c = document.querySelector('hearth-app')?.shadowRoot?.querySelector('hearth-room')?.shadowRoot
          ?.querySelector('hearth-composer')?.shadowRoot?.querySelector('time[data-elapsed]');
        return c !== null && c !== undefined && Number(c.getAttribute('data-elapsed')) >= 1500; })()`,
    );
    await bob.page.getByRole('button', { name: 'Send voice message' }).click();
    await see(bob.page, 'hearth-timeline .msg.own hearth-voice');
    await see(alice.page, 'hearth-timeline .msg:not(.own) hearth-voice[data-voice=true]');
    const voice = alice.page.locator('hearth-timeline .msg:not(.own) hearth-voice').last();
    await voice.getByRole('button', { name: 'Play voice message' }).click();
    // Playing: the audio's clock moves (data-played is its currentTime) or it reaches the end.
    await alice.page.waitForFunction(
      `(() => { const room = document.querySelector('hearth-app')?.shadowRoot?.querySelector('hearth-room');
        const players = room?.shadowRoot?.querySelector('hearth-timeline')?.shadowRoot?.querySelectorAll('hearth-voice') ?? [];
        const v = players[players.length - 1];
        return v !== undefined && (Number(v.dataset.played ?? 0) > 0.2 || v.getAttribute('state') === 'ended'); })()`,
    );
    await screenshot(alice.page, '08-voice-message');
  });

  it('shares a moment with a picture; the friend likes and comments; both see the counts', { timeout: STEP }, async () => {
    await goTo(alice, 'moments');
    await alice.page.locator('hearth-moments textarea.compose').fill('Golden hour at the lake 🌅');
    await alice.page.locator('hearth-moments .new input[type=file]').setInputFiles([
      { name: 'lake.png', mimeType: 'image/png', buffer: await samplePicture('warm') },
      { name: 'hills.png', mimeType: 'image/png', buffer: await samplePicture('cool') },
    ]);
    await alice.page.locator('hearth-moments .new button', { hasText: 'Post' }).click();
    const post = '[data-moment][data-author="@alice:hearth.test"]';
    await see(alice.page, `hearth-moments ${post} .text`, 'Golden hour at the lake');
    await see(alice.page, `hearth-moments ${post} hearth-image img`);
    // Bob is in Alice's moments room since the friendship started: the post is in his feed.
    await goTo(bob, 'moments');
    await see(bob.page, `hearth-moments ${post} .text`, 'Golden hour at the lake');
    await bob.page.locator(`hearth-moments ${post} button.like`).click();
    await see(bob.page, `hearth-moments ${post} .like-count`, /^1$/);
    await see(alice.page, `hearth-moments ${post} .like-count`, /^1$/);
    await bob.page.locator(`hearth-moments ${post} .comment-form input`).fill('Stunning! Take me next time.');
    await bob.page.locator(`hearth-moments ${post} .comment-form input`).press('Enter');
    await see(bob.page, `hearth-moments ${post} .comment-count`, /^1$/);
    await see(alice.page, `hearth-moments ${post} .comment-count`, /^1$/);
    await see(alice.page, `hearth-moments ${post} .comment`, 'Stunning! Take me next time.');
    await screenshot(alice.page, '09-moments');
    await screenshot(bob.page, '10-moments-friend');
  });

  it('finds an old message by search and jumps to it in context', { timeout: STEP }, async () => {
    // Push the first message far back: 45 newer messages, then a fresh page load.
    const session = JSON.parse((await alice.page.evaluate("localStorage.getItem('hearth.session')")) as string) as { accessToken: string };
    const rooms = (await (await fetch(`${hs.baseUrl}/_matrix/client/v3/joined_rooms`, { headers: { authorization: `Bearer ${session.accessToken}` } })).json()) as {
      joined_rooms: string[];
    };
    const dm = await findDirectRoom(rooms.joined_rooms, session.accessToken);
    for (let i = 1; i <= 45; i++) {
      const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(dm)}/send/m.room.message/filler-${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${session.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ msgtype: 'm.text', body: `Catching up, message ${i}` }),
      });
      expect(res.status).toBe(200);
    }
    await alice.page.goto(`${hs.baseUrl}/search`);
    await alice.page.locator('hearth-search input[name=term]').fill('pineapple');
    await alice.page.locator('hearth-search input[name=term]').press('Enter');
    await see(alice.page, 'hearth-search .hit mark', 'pineapple');
    await screenshot(alice.page, '11-search');
    await alice.page.locator('hearth-search .hit').first().click();
    await see(alice.page, 'hearth-timeline .bubble.highlight', 'pineapple pizza');
    await screenshot(alice.page, '12-search-result-in-context');
  });

  it('fits a phone-width window and has a dark theme', { timeout: STEP }, async () => {
    await bob.page.setViewportSize({ width: 390, height: 800 });
    await goTo(bob, 'chats');
    await see(bob.page, 'hearth-room-list a[data-room]');
    await screenshot(bob.page, '13-phone-chats');
    await bob.page.locator('hearth-room-list a[data-room]').first().click();
    await see(bob.page, 'hearth-room hearth-composer textarea');
    await screenshot(bob.page, '14-phone-chat');
    await goTo(bob, 'me');
    await bob.page.locator('hearth-profile button', { hasText: 'dark theme' }).click();
    await bob.page.waitForFunction("document.documentElement.dataset.theme === 'dark'");
    await bob.page.setViewportSize({ width: 1280, height: 820 });
    await goTo(bob, 'chats');
    await bob.page.locator('hearth-room-list a[data-room]').first().click();
    await see(bob.page, 'hearth-timeline hearth-voice');
    await screenshot(bob.page, '15-dark-chat');
  });

  it('logs no console errors on the happy path', () => {
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });
});

async function findDirectRoom(roomIds: string[], token: string): Promise<string> {
  for (const roomId of roomIds) {
    const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { joined?: Record<string, unknown> };
    const create = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.create/`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const type = ((await create.json()) as { type?: string }).type;
    if (type === undefined && Object.keys(body.joined ?? {}).length === 2) return roomId;
  }
  throw new Error('no direct room between alice and bob');
}
