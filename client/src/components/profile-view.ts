/** Me: avatar, display name, status line, password, theme, sign out. */
import { css, html, nothing } from 'lit';
import { MatrixError } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { icons } from './icons.js';
import { uploadFile } from '../state/media.js';
import { shared } from './styles.js';
import './avatar.js';

export class HearthProfile extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    theme: {},
    saving: { state: true },
    passwordMessage: { state: true },
    passwordError: { state: true },
  };
  declare theme: string;
  declare saving: string;
  declare passwordMessage: string;
  declare passwordError: string;

  constructor() {
    super();
    this.theme = 'light';
    this.saving = '';
    this.passwordMessage = '';
    this.passwordError = '';
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--bg); }
      .content { overflow-y: auto; flex: 1; padding: 24px; }
      .inner { max-width: 640px; margin: 0 auto; display: flex; flex-direction: column; gap: 16px; }
      .card { padding: 20px 22px; }
      .card h2 { margin: 0 0 14px; font-size: 16px; }
      .me { display: flex; align-items: center; gap: 18px; }
      .me .avatar { position: relative; border: none; background: none; padding: 0; border-radius: 50%; }
      .me .avatar span { position: absolute; right: 0; bottom: 0; width: 30px; height: 30px; border-radius: 50%; background: var(--primary); color: var(--on-primary); display: flex; align-items: center; justify-content: center; border: 3px solid var(--surface); }
      .me .avatar span svg { width: 15px; height: 15px; }
      .me .name { font-size: 22px; font-weight: 700; }
      .inline { display: flex; gap: 8px; }
      .inline .input { flex: 1; }
      .inline .btn { height: 42px; }
      .ok { color: var(--online); font-size: 14px; margin-bottom: 10px; }
      .row { display: flex; align-items: center; gap: 12px; justify-content: space-between; }
      input[type='file'] { display: none; }
      @media (max-width: 760px) { .content { padding: 12px; } }
    `,
  ];

  private async setAvatar(file: File | undefined): Promise<void> {
    if (!file) return;
    this.saving = 'avatar';
    try {
      const { url } = await uploadFile(this.hearth.client, file, file.name);
      await this.hearth.client.setAvatarUrl(url);
      this.toast('Profile picture updated');
    } finally {
      this.saving = '';
    }
  }

  private field(name: string): HTMLInputElement {
    return this.renderRoot.querySelector<HTMLInputElement>(`[name="${name}"]`)!;
  }

  private async saveName(event: Event): Promise<void> {
    event.preventDefault();
    const name = this.field('displayname').value.trim();
    if (!name) return;
    this.saving = 'name';
    try {
      await this.hearth.client.setDisplayName(name);
      this.toast('Name saved');
    } finally {
      this.saving = '';
    }
  }

  private async saveStatus(event: Event): Promise<void> {
    event.preventDefault();
    this.saving = 'status';
    try {
      await this.hearth.client.setPresence({ presence: 'online', status_msg: this.field('status').value.trim() });
      this.toast('Status saved');
    } finally {
      this.saving = '';
    }
  }

  private async changePassword(event: Event): Promise<void> {
    event.preventDefault();
    this.passwordError = '';
    this.passwordMessage = '';
    const current = this.field('current').value;
    const next = this.field('new').value;
    if (next.length < 8) {
      this.passwordError = 'Use at least 8 characters.';
      return;
    }
    if (next !== this.field('repeat').value) {
      this.passwordError = 'The new passwords differ.';
      return;
    }
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: this.hearth.userId }, password: current };
    this.saving = 'password';
    try {
      try {
        await this.hearth.client.setPassword(auth, next, false);
      } catch (error) {
        const session = error instanceof MatrixError ? (error.data as { session?: string }).session : undefined;
        if (!session || (error as MatrixError).errcode) throw error;
        await this.hearth.client.setPassword({ ...auth, session }, next, false);
      }
      (event.target as HTMLFormElement).reset();
      this.passwordMessage = 'Password changed.';
    } catch (error) {
      const e = error as MatrixError;
      this.passwordError = e.errcode === 'M_FORBIDDEN' ? 'Your current password is not right.' : (e.data?.error ?? e.message);
    } finally {
      this.saving = '';
    }
  }

  override render() {
    const h = this.hearth;
    const me = h.userId;
    const name = h.displayName(me);
    const status = h.presence(me).status ?? '';
    return html`
      <header class="page-header"><h1>Me</h1></header>
      <div class="content"><div class="inner">
        <section class="card me">
          <button class="avatar" aria-label="Change profile picture" ?disabled=${this.saving === 'avatar'}
            @click=${() => this.renderRoot.querySelector<HTMLInputElement>('input[type=file]')?.click()}>
            <hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(me)} .name=${name} .seed=${me} .size=${84}></hearth-avatar>
            <span>${icons.image}</span>
          </button>
          <input type="file" accept="image/*" aria-label="Choose a profile picture" @change=${(e: Event) => void this.setAvatar((e.target as HTMLInputElement).files?.[0])} />
          <div><div class="name">${name}</div><div class="muted">${me}</div>${status ? html`<div class="muted"><em>“${status}”</em></div>` : nothing}</div>
        </section>
        <section class="card">
          <h2>Profile</h2>
          <form class="field" @submit=${(e: Event) => void this.saveName(e)}>
            <label for="displayname">Display name</label>
            <div class="inline"><input class="input" id="displayname" name="displayname" .value=${name} maxlength="100" />
              <button class="btn" ?disabled=${this.saving === 'name'}>Save</button></div>
          </form>
          <form class="field" @submit=${(e: Event) => void this.saveStatus(e)}>
            <label for="status">Status line</label>
            <div class="inline"><input class="input" id="status" name="status" .value=${status} placeholder="What's on your mind?" maxlength="140" />
              <button class="btn" ?disabled=${this.saving === 'status'}>Save</button></div>
          </form>
        </section>
        <section class="card">
          <h2>Password</h2>
          ${this.passwordError ? html`<div class="error" role="alert" style="margin-bottom:12px">${this.passwordError}</div>` : nothing}
          ${this.passwordMessage ? html`<div class="ok" role="status">${this.passwordMessage}</div>` : nothing}
          <form @submit=${(e: Event) => void this.changePassword(e)}>
            <div class="field"><label for="current">Current password</label><input class="input" id="current" name="current" type="password" autocomplete="current-password" /></div>
            <div class="field"><label for="new">New password</label><input class="input" id="new" name="new" type="password" autocomplete="new-password" /></div>
            <div class="field"><label for="repeat">Repeat new password</label><input class="input" id="repeat" name="repeat" type="password" autocomplete="new-password" /></div>
            <button class="btn" ?disabled=${this.saving === 'password'}>Change password</button>
          </form>
        </section>
        <section class="card">
          <div class="row"><div><strong>Appearance</strong><div class="muted">${this.theme === 'dark' ? 'Dark' : 'Light'} theme</div></div>
            <button class="btn secondary" @click=${() => this.dispatchEvent(new CustomEvent('theme', { bubbles: true, composed: true }))}>
              ${this.theme === 'dark' ? icons.sun : icons.moon} Use ${this.theme === 'dark' ? 'light' : 'dark'} theme</button></div>
        </section>
        <section class="card">
          <div class="row"><div><strong>Signed in to</strong><div class="muted">${h.session.baseUrl}</div></div>
            <button class="btn danger" @click=${() => this.dispatchEvent(new CustomEvent('sign-out', { bubbles: true, composed: true }))}>Sign out</button></div>
        </section>
      </div></div>`;
  }
}
customElements.define('hearth-profile', HearthProfile);
