/**
 * The app shell: restores the session, shows the login page or the app (navigation rail, the
 * current view), routes by path (/chats/<room>, /friends, /moments, /search, /me) and shows toasts.
 */
import { LitElement, css, html, nothing } from 'lit';
import { HttpApiEvent } from 'matrix-js-sdk';
import { Hearth } from '../state/hearth.js';
import { clearSession, loadSession, saveSession, type StoredSession } from '../state/session.js';
import { icons } from './icons.js';
import { shared } from './styles.js';
import { currentTheme, toggleTheme } from '../theme.js';
import './login-view.js';
import './room-list.js';
import './room-view.js';
import './friends-view.js';
import './moments-view.js';
import './profile-view.js';
import './search-view.js';
import './avatar.js';

type View = 'chats' | 'friends' | 'moments' | 'search' | 'me';

export class HearthApp extends LitElement {
  static override properties = {
    hearth: { state: true },
    view: { state: true },
    roomId: { state: true },
    highlight: { state: true },
    toastText: { state: true },
    starting: { state: true },
    theme: { state: true },
  };
  declare hearth?: Hearth;
  declare view: View;
  declare roomId?: string;
  declare highlight?: string;
  declare toastText: string;
  declare starting: boolean;
  declare theme: string;
  private toastTimer?: number;
  private readonly onChange = () => this.requestUpdate();

  constructor() {
    super();
    this.view = 'chats';
    this.toastText = '';
    this.starting = false;
    this.theme = currentTheme();
  }

  static override styles = [
    shared,
    css`
      :host { display: block; height: 100%; }
      .app { display: grid; grid-template-columns: 76px 1fr; grid-template-rows: 100%; height: 100%; }
      nav {
        display: flex; flex-direction: column; align-items: center; gap: 6px; padding: 16px 0;
        background: var(--surface); border-right: 1px solid var(--border);
      }
      nav .logo { width: 40px; height: 40px; margin-bottom: 14px; }
      nav a {
        position: relative; display: flex; flex-direction: column; align-items: center; gap: 3px; width: 60px; padding: 8px 0;
        border-radius: 14px; color: var(--muted); text-decoration: none; font-size: 11px; font-weight: 600;
      }
      nav a svg { width: 24px; height: 24px; }
      nav a:hover { background: var(--surface-3); color: var(--text); }
      nav a[aria-current='page'] { background: var(--primary-soft); color: var(--primary); }
      nav a .badge { position: absolute; top: 2px; right: 6px; }
      nav .bottom { margin-top: auto; display: flex; flex-direction: column; align-items: center; gap: 10px; }
      main { min-width: 0; height: 100%; overflow: hidden; }
      .split { display: grid; grid-template-columns: minmax(280px, 340px) 1fr; grid-template-rows: 100%; height: 100%; min-height: 0; }
      .split > * { min-height: 0; min-width: 0; overflow: hidden; }
      .room-pane { height: 100%; }
      .split > hearth-room-list { border-right: 1px solid var(--border); }
      .placeholder { display: flex; flex-direction: column; align-items: center; justify-content: center; height: 100%; gap: 12px; color: var(--muted); text-align: center; padding: 24px; }
      .placeholder svg { width: 56px; height: 56px; color: var(--primary); opacity: 0.6; }
      .placeholder h2 { margin: 0; color: var(--text); font-size: 20px; }
      .loading { display: flex; align-items: center; justify-content: center; height: 100%; color: var(--muted); gap: 12px; flex-direction: column; }
      .loading img { width: 56px; animation: pulse 1.4s ease-in-out infinite; }
      @keyframes pulse { 50% { opacity: 0.4; transform: scale(0.94); } }
      .toast {
        position: fixed; left: 50%; bottom: 24px; transform: translateX(-50%); z-index: 2000; max-width: min(92vw, 520px);
        background: var(--text); color: var(--bg); padding: 12px 18px; border-radius: 12px; box-shadow: var(--shadow); font-size: 14px;
      }
      .offline { position: fixed; top: 0; left: 0; right: 0; z-index: 1500; background: #b45309; color: #fff; text-align: center; font-size: 13px; padding: 4px; }
      @media (max-width: 760px) {
        .app { grid-template-columns: 1fr; grid-template-rows: minmax(0, 1fr) auto; }
        nav { order: 2; flex-direction: row; justify-content: space-around; padding: 4px 6px calc(4px + env(safe-area-inset-bottom)); border-right: none; border-top: 1px solid var(--border); }
        nav .logo, nav .bottom { display: none; }
        nav a { width: auto; flex: 1; }
        main { order: 1; }
        .split { grid-template-columns: 1fr; }
        .split.has-room > hearth-room-list { display: none; }
        .split:not(.has-room) > .room-pane { display: none; }
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this.readLocation();
    window.addEventListener('popstate', () => this.readLocation());
    const session = loadSession();
    if (session) void this.startSession(session);
    this.addEventListener('navigate', (e) => this.go((e as CustomEvent<string>).detail));
    this.addEventListener('toast', (e) => this.showToast((e as CustomEvent<string>).detail));
    this.addEventListener('signed-in', (e) => {
      const session = (e as CustomEvent<StoredSession>).detail;
      saveSession(session);
      void this.startSession(session);
    });
    this.addEventListener('sign-out', () => void this.signOut());
    this.addEventListener('theme', () => (this.theme = toggleTheme()));
    window.addEventListener('unhandledrejection', (e) => {
      const reason = e.reason as { message?: string; data?: { error?: string } } | undefined;
      this.showToast(reason?.data?.error ?? reason?.message ?? 'Something went wrong');
    });
  }

  private async startSession(session: StoredSession): Promise<void> {
    this.starting = true;
    try {
      const hearth = await Hearth.start(session);
      hearth.addEventListener('change', this.onChange);
      this.hearth = hearth;
      hearth.client.on(HttpApiEvent.SessionLoggedOut, () => void this.signOut(true));
    } catch (error) {
      this.showToast(error instanceof Error ? error.message : String(error));
    } finally {
      this.starting = false;
    }
  }

  private async signOut(alreadyOut = false): Promise<void> {
    const hearth = this.hearth;
    this.hearth = undefined;
    clearSession();
    hearth?.removeEventListener('change', this.onChange);
    await hearth?.stop(!alreadyOut);
    this.go('/chats');
  }

  private readLocation(): void {
    const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const view = (['chats', 'friends', 'moments', 'search', 'me'] as const).find((v) => v === parts[0]) ?? 'chats';
    this.view = view;
    this.roomId = view === 'chats' ? parts[1] : undefined;
    this.highlight = view === 'chats' ? (new URLSearchParams(location.search).get('event') ?? undefined) : undefined;
  }

  go(path: string): void {
    if (`${location.pathname}${location.search}` !== path) history.pushState(null, '', path);
    this.readLocation();
  }

  private showToast(text: string): void {
    this.toastText = text;
    clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => (this.toastText = ''), 4000);
  }

  private navLink(view: View, label: string, icon: unknown, badge = 0) {
    const path = view === 'chats' ? '/chats' : `/${view}`;
    return html`<a href=${path} aria-current=${this.view === view ? 'page' : 'false'} data-nav=${view}
      @click=${(e: Event) => {
        e.preventDefault();
        this.go(path);
      }}>${icon}<span>${label}</span>${badge > 0 ? html`<span class="badge">${badge}</span>` : nothing}</a>`;
  }

  private renderView(hearth: Hearth) {
    switch (this.view) {
      case 'friends':
        return html`<hearth-friends .hearth=${hearth}></hearth-friends>`;
      case 'moments':
        return html`<hearth-moments .hearth=${hearth}></hearth-moments>`;
      case 'search':
        return html`<hearth-search .hearth=${hearth}></hearth-search>`;
      case 'me':
        return html`<hearth-profile .hearth=${hearth} .theme=${this.theme}></hearth-profile>`;
      default: {
        const room = this.roomId ? hearth.client.getRoom(this.roomId) : null;
        return html`<div class="split ${room ? 'has-room' : ''}">
          <hearth-room-list .hearth=${hearth} .selected=${this.roomId}></hearth-room-list>
          <div class="room-pane">
            ${room
              ? html`<hearth-room .hearth=${hearth} .room=${room} .highlight=${this.highlight}></hearth-room>`
              : html`<div class="placeholder">${icons.chat}<h2>Your conversations</h2>
                  <p>Pick a chat on the left, or add friends to start talking.</p></div>`}
          </div>
        </div>`;
      }
    }
  }

  override render() {
    const toast = this.toastText ? html`<div class="toast" role="status">${this.toastText}</div>` : nothing;
    const hearth = this.hearth;
    if (!hearth) {
      if (this.starting || loadSession()) return html`<div class="loading"><img src="/icon.svg" alt="" /><span>Connecting…</span></div>${toast}`;
      return html`<hearth-login></hearth-login>${toast}`;
    }
    if (!hearth.ready) return html`<div class="loading"><img src="/icon.svg" alt="" /><span>Loading your chats…</span></div>${toast}`;
    const unread = hearth.chats().reduce((n, r) => n + hearth.unread(r), 0);
    const requests = hearth.friendRequests().filter((r) => r.direction === 'incoming').length;
    return html`<div class="app">
        <nav aria-label="Main">
          <img class="logo" src="/icon.svg" alt="Hearth" />
          ${this.navLink('chats', 'Chats', icons.chat, unread)}
          ${this.navLink('friends', 'Friends', icons.friends, requests)}
          ${this.navLink('moments', 'Moments', icons.moments)}
          ${this.navLink('search', 'Search', icons.search)}
          ${this.navLink('me', 'Me', icons.user)}
          <div class="bottom">
            <button class="icon-btn" aria-label="Switch theme" @click=${() => (this.theme = toggleTheme())}>
              ${this.theme === 'dark' ? icons.sun : icons.moon}
            </button>
            <hearth-avatar .client=${hearth.client} .mxc=${hearth.avatarUrl(hearth.userId)} .name=${hearth.displayName(hearth.userId)}
              .seed=${hearth.userId} .size=${36}></hearth-avatar>
          </div>
        </nav>
        <main>${this.renderView(hearth)}</main>
      </div>
      ${hearth.syncState === 'ERROR' || hearth.syncState === 'RECONNECTING'
        ? html`<div class="offline">Connection lost — reconnecting…</div>`
        : nothing}
      ${toast}`;
  }
}
customElements.define('hearth-app', HearthApp);
