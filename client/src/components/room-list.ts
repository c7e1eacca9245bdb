/** The chat list: friends and groups, most recent first, with previews and unread counts. */
import { css, html, nothing } from 'lit';
import type { Room } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { preview, shortTime } from './format.js';
import { icons } from './icons.js';
import { shared } from './styles.js';
import './avatar.js';

export class HearthRoomList extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    selected: {},
    creating: { state: true },
    filter: { state: true },
  };
  declare selected?: string;
  declare creating: boolean;
  declare filter: string;

  constructor() {
    super();
    this.creating = false;
    this.filter = '';
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--surface); min-width: 0; }
      .filter { padding: 12px 16px 8px; }
      ul { list-style: none; margin: 0; padding: 4px 8px 16px; overflow-y: auto; flex: 1; }
      li a {
        display: flex; gap: 12px; align-items: center; padding: 10px 10px; border-radius: 12px; text-decoration: none; color: inherit;
      }
      li a:hover { background: var(--surface-2); }
      li a[aria-current='true'] { background: var(--primary-soft); }
      .meta { flex: 1; min-width: 0; }
      .row { display: flex; align-items: baseline; gap: 8px; }
      .name { font-weight: 600; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
      .time { font-size: 12px; color: var(--muted); }
      .preview { font-size: 13.5px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1; }
      .unread .name, .unread .preview { color: var(--text); font-weight: 700; }
      .invite { margin: 4px 8px; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
      .invite .actions { display: flex; gap: 8px; }
      .section-title { padding: 0 18px; }
      dialog { border: none; border-radius: var(--radius); padding: 0; width: min(440px, 92vw); background: var(--surface); color: var(--text); box-shadow: var(--shadow); }
      dialog::backdrop { background: rgba(0, 0, 0, 0.4); }
      dialog form { padding: 24px; }
      dialog h2 { margin: 0 0 16px; font-size: 18px; }
      .pick { display: flex; align-items: center; gap: 10px; padding: 8px; border-radius: 10px; }
      .pick:hover { background: var(--surface-2); }
      .picks { max-height: 240px; overflow-y: auto; margin-bottom: 16px; }
      .dialog-actions { display: flex; justify-content: flex-end; gap: 8px; }
    `,
  ];

  private open(room: Room): void {
    this.navigate(`/chats/${encodeURIComponent(room.roomId)}`);
  }

  private async createGroup(event: Event): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value.trim();
    const invite = [...form.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked')].map((i) => i.value);
    if (!name) return;
    const roomId = await this.hearth.createGroup(name, invite);
    this.renderRoot.querySelector('dialog')?.close();
    form.reset();
    this.navigate(`/chats/${encodeURIComponent(roomId)}`);
  }

  override render() {
    const h = this.hearth;
    const needle = this.filter.toLowerCase();
    const chats = h.chats().filter((r) => !needle || h.roomName(r).toLowerCase().includes(needle));
    const invites = h.groupInvites();
    return html`
      <div class="page-header"><h1>Chats</h1><span class="spacer"></span>
        <button class="btn small secondary" @click=${() => this.renderRoot.querySelector('dialog')?.showModal()}>${icons.group} New group</button>
      </div>
      <div class="filter"><input class="input" type="search" placeholder="Filter chats" aria-label="Filter chats"
        .value=${this.filter} @input=${(e: Event) => (this.filter = (e.target as HTMLInputElement).value)} /></div>
      ${invites.length
        ? html`<div class="section-title">Group invitations</div>
            ${invites.map(
              (room) => html`<div class="card invite">
                <div><strong>${room.name || 'A group'}</strong>
                  <span class="muted">from ${h.displayName(room.getDMInviter() ?? room.getMember(h.userId)?.events.member?.getSender() ?? '')}</span></div>
                <div class="actions">
                  <button class="btn small" @click=${() => void h.client.joinRoom(room.roomId).then(() => this.open(room))}>Join</button>
                  <button class="btn small ghost" @click=${() => void h.client.leave(room.roomId)}>Decline</button>
                </div></div>`,
            )}`
        : nothing}
      <ul aria-label="Chats">
        ${chats.length === 0 ? html`<li class="empty">No chats yet. Find friends in the Friends tab.</li>` : nothing}
        ${chats.map((room) => {
          const partner = h.dmPartner(room);
          const unread = h.unread(room);
          const last = h.lastMessage(room);
          const name = h.roomName(room);
          return html`<li>
            <a href="/chats/${encodeURIComponent(room.roomId)}" class=${unread > 0 ? 'unread' : ''} data-room=${name}
              aria-current=${this.selected === room.roomId ? 'true' : 'false'}
              @click=${(e: Event) => {
                e.preventDefault();
                this.open(room);
              }}>
              <hearth-avatar .client=${h.client} .mxc=${partner ? h.avatarUrl(partner, room) : (room.getMxcAvatarUrl() ?? undefined)}
                .name=${name} .seed=${partner ?? room.roomId} .presence=${partner ? h.presence(partner).state : undefined} .size=${46}></hearth-avatar>
              <div class="meta">
                <div class="row"><span class="name">${name}</span><span class="time">${last ? shortTime(last.getTs()) : ''}</span></div>
                <div class="row"><span class="preview">${last ? `${!partner && last.getSender() !== h.userId ? `${h.displayName(last.getSender()!, room)}: ` : last.getSender() === h.userId ? 'You: ' : ''}${preview(last)}` : partner ? 'Say hello 👋' : 'New group'}</span>
                  ${unread > 0 ? html`<span class="badge" aria-label="${unread} unread">${unread}</span>` : nothing}</div>
              </div>
            </a>
          </li>`;
        })}
      </ul>
      <dialog aria-label="New group">
        <form @submit=${(e: Event) => void this.createGroup(e)}>
          <h2>New group</h2>
          <div class="field"><label for="group-name">Group name</label><input class="input" id="group-name" name="name" required /></div>
          <div class="section-title">Invite friends</div>
          <div class="picks">
            ${h.friends().length === 0 ? html`<div class="muted">Add friends first to invite them.</div>` : nothing}
            ${h.friends().map(
              (f) => html`<label class="pick"><input type="checkbox" value=${f.userId} />
                <hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(f.userId)} .name=${h.displayName(f.userId)} .seed=${f.userId} .size=${32}></hearth-avatar>
                ${h.displayName(f.userId)}</label>`,
            )}
          </div>
          <div class="dialog-actions">
            <button type="button" class="btn ghost" @click=${() => this.renderRoot.querySelector('dialog')?.close()}>Cancel</button>
            <button class="btn" type="submit">Create</button>
          </div>
        </form>
      </dialog>`;
  }
}
customElements.define('hearth-room-list', HearthRoomList);
