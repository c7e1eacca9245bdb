/** Sign in and sign up: homeserver URL (default: this page's server), username, password, token. */
import { LitElement, css, html, nothing } from 'lit';
import { login, register, TokenRequiredError, type StoredSession } from '../state/session.js';
import { shared } from './styles.js';

export class HearthLogin extends LitElement {
  static override properties = {
    mode: { state: true },
    busy: { state: true },
    error: { state: true },
    needToken: { state: true },
    serverOpen: { state: true },
  };
  declare mode: 'login' | 'register';
  declare busy: boolean;
  declare error: string;
  declare needToken: boolean;
  declare serverOpen: boolean;

  constructor() {
    super();
    this.mode = 'login';
    this.busy = false;
    this.error = '';
    this.needToken = false;
    this.serverOpen = false;
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; min-height: 100%; align-items: center; justify-content: center; padding: 24px; overflow: auto;
        background: radial-gradient(1200px 600px at 10% -10%, var(--primary-soft), transparent), var(--bg); height: 100%; }
      .card { width: 100%; max-width: 420px; padding: 32px; }
      .brand { display: flex; align-items: center; gap: 12px; margin-bottom: 8px; }
      .brand img { width: 44px; height: 44px; }
      .brand h1 { margin: 0; font-size: 26px; letter-spacing: -0.02em; }
      .tagline { margin: 0 0 24px; color: var(--muted); }
      .tabs { display: grid; grid-template-columns: 1fr 1fr; background: var(--surface-3); border-radius: 999px; padding: 4px; margin-bottom: 22px; }
      .tabs button { border: none; background: transparent; height: 34px; border-radius: 999px; font-weight: 600; color: var(--muted); }
      .tabs button[aria-selected='true'] { background: var(--surface); color: var(--text); box-shadow: var(--shadow); }
      .server { font-size: 13px; color: var(--muted); margin-bottom: 14px; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
      .server button { border: none; background: none; color: var(--primary); font-weight: 600; padding: 0; }
      .submit { width: 100%; height: 44px; margin-top: 6px; }
      .error { margin-bottom: 14px; }
    `,
  ];

  private value(name: string): string {
    return (this.renderRoot.querySelector<HTMLInputElement>(`[name="${name}"]`)?.value ?? '').trim();
  }

  private async submit(event: Event): Promise<void> {
    event.preventDefault();
    const server = this.value('server') || location.origin;
    const username = this.value('username');
    const password = this.renderRoot.querySelector<HTMLInputElement>('[name="password"]')?.value ?? '';
    if (!username || !password) {
      this.error = 'Enter a username and a password.';
      return;
    }
    this.busy = true;
    this.error = '';
    try {
      let session: StoredSession;
      if (this.mode === 'login') {
        session = await login(server, username, password);
      } else {
        const confirm = this.renderRoot.querySelector<HTMLInputElement>('[name="confirm"]')?.value ?? '';
        if (confirm !== password) throw new Error('The two passwords differ.');
        session = await register(server, username, password, this.needToken ? this.value('token') : undefined);
      }
      this.dispatchEvent(new CustomEvent('signed-in', { detail: session, bubbles: true, composed: true }));
    } catch (error) {
      if (error instanceof TokenRequiredError) {
        this.needToken = true;
        this.error = 'This server needs a registration token to sign up. Enter the one you were given.';
      } else {
        this.error = error instanceof Error ? error.message : String(error);
      }
    } finally {
      this.busy = false;
    }
  }

  private setMode(mode: 'login' | 'register'): void {
    this.mode = mode;
    this.error = '';
  }

  override render() {
    const register = this.mode === 'register';
    return html`<form class="card" @submit=${(e: Event) => void this.submit(e)} novalidate>
      <div class="brand"><img src="/icon.svg" alt="" /><h1>Hearth</h1></div>
      <p class="tagline">Chat, friends and moments — on Matrix.</p>
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected=${!register} @click=${() => this.setMode('login')}>Sign in</button>
        <button type="button" role="tab" aria-selected=${register} @click=${() => this.setMode('register')}>Create account</button>
      </div>
      ${this.error ? html`<div class="error" role="alert">${this.error}</div>` : nothing}
      <div class="server" ?hidden=${this.serverOpen}>
        Server: <strong>${location.host}</strong>
        <button type="button" @click=${() => (this.serverOpen = true)}>Change</button>
      </div>
      <div class="field" ?hidden=${!this.serverOpen}>
        <label for="server">Homeserver URL</label>
        <input class="input" id="server" name="server" type="url" .value=${location.origin} autocomplete="url" />
      </div>
      <div class="field">
        <label for="username">Username</label>
        <input class="input" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" />
      </div>
      <div class="field">
        <label for="password">Password</label>
        <input class="input" id="password" name="password" type="password" autocomplete=${register ? 'new-password' : 'current-password'} />
      </div>
      ${register
        ? html`<div class="field">
            <label for="confirm">Repeat password</label>
            <input class="input" id="confirm" name="confirm" type="password" autocomplete="new-password" />
          </div>`
        : nothing}
      ${register && this.needToken
        ? html`<div class="field">
            <label for="token">Registration token</label>
            <input class="input" id="token" name="token" autocomplete="one-time-code" />
          </div>`
        : nothing}
      <button class="btn submit" type="submit" ?disabled=${this.busy}>
        ${this.busy ? 'Please wait…' : register ? 'Create account' : 'Sign in'}
      </button>
    </form>`;
  }
}
customElements.define('hearth-login', HearthLogin);
