/** One open chat: header (name, presence or members, invite, leave), timeline, typing, composer. */
import { css, html, nothing } from 'lit';
import { KnownMembership, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { icons } from './icons.js';
import { relativeTime } from './format.js';
import { shared } from './styles.js';
import type { HearthComposer } from './composer-bar.js';
import './timeline-view.js';
import './composer-bar.js';
import './avatar.js';

export class HearthRoom extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    room: { attribute: false },
    highlight: {},
    replyTo: { state: true },
    editing: { state: true },
    dragging: { state: true },
    inviting: { state: true },
  };
  declare room: Room;
  declare highlight?: string;
  declare replyTo?: MatrixEvent;
  declare editing?: MatrixEvent;
  declare dragging: boolean;
  declare inviting: boolean;

  constructor() {
    super();
    this.dragging = false;
    this.inviting = false;
    this.addEventListener('reply', (e) => {
      this.editing = undefined;
      this.replyTo = (e as CustomEvent<MatrixEvent>).detail;
    });
    this.addEventListener('edit', (e) => {
      this.replyTo = undefined;
      this.editing = (e as CustomEvent<MatrixEvent>).detail;
    });
    this.addEventListener('clear-context', () => {
      this.replyTo = undefined;
      this.editing = undefined;
    });
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--bg); position: relative; min-width: 0; }
      .page-header { gap: 12px; }
      .title { min-width: 0; flex: 1; }
      .title h2 { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
      .sub { font-size: 13px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
      .back { display: none; }
      hearth-timeline { flex: 1; min-height: 0; }
      .typing { height: 22px; padding: 0 24px; font-size: 13px; color: var(--muted); font-style: italic; }
      .drop {
        position: absolute; inset: 12px; z-index: 20; border: 3px dashed var(--primary); border-radius: var(--radius);
        background: color-mix(in srgb, var(--primary-soft) 85%, transparent); display: flex; align-items: center; justify-content: center;
        font-size: 18px; font-weight: 700; color: var(--primary); pointer-events: none;
      }
      .invite-panel { padding: 12px 20px; background: var(--surface); border-bottom: 1px solid var(--border); display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
      @media (max-width: 760px) { .back { display: inline-flex; } .page-header { padding: 0 8px; } }
    `,
  ];

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    super.willUpdate(changed);
    if (changed.has('room') && changed.get('room')) {
      this.replyTo = undefined;
      this.editing = undefined;
      this.inviting = false;
    }
  }

  private composer(): HearthComposer | null {
    return this.renderRoot.querySelector('hearth-composer');
  }

  private onDrop(event: DragEvent): void {
    event.preventDefault();
    this.dragging = false;
    const files = [...(event.dataTransfer?.files ?? [])];
    if (files.length) void this.composer()?.sendFiles(files);
  }

  private async leave(): Promise<void> {
    const partner = this.hearth.dmPartner(this.room);
    if (partner) {
      if (!confirm(`Remove ${this.hearth.displayName(partner)} from your friends?`)) return;
      await this.hearth.removeFriend(partner);
    } else {
      if (!confirm(`Leave “${this.room.name}”?`)) return;
      await this.hearth.client.leave(this.room.roomId);
    }
    this.navigate('/chats');
  }

  override render() {
    const h = this.hearth;
    const room = this.room;
    const partner = h.dmPartner(room);
    const name = h.roomName(room);
    const members = room.getMembers().filter((m) => m.membership === KnownMembership.Join);
    let sub: string;
    if (partner) {
      const p = h.presence(partner);
      const membership = room.getMember(partner)?.membership;
      sub = membership === KnownMembership.Invite ? 'Friend request sent' : membership === KnownMembership.Leave ? 'Left the conversation'
        : p.state === 'online' ? (p.status ? `Online · ${p.status}` : 'Online')
        : p.lastActiveAgo !== undefined ? `Last seen ${relativeTime(Date.now() - p.lastActiveAgo)}` : (p.status ?? 'Offline');
    } else {
      sub = `${members.length} member${members.length === 1 ? '' : 's'} · ${members.slice(0, 4).map((m) => h.displayName(m.userId, room)).join(', ')}`;
    }
    const typing = room.getMembers().filter((m) => m.typing && m.userId !== h.userId).map((m) => h.displayName(m.userId, room));
    const friendsToInvite = h.friends().filter((f) => !['join', 'invite'].includes(room.getMember(f.userId)?.membership ?? ''));
    return html`
      <header class="page-header">
        <button class="icon-btn back" aria-label="Back to chats" @click=${() => this.navigate('/chats')}>${icons.back}</button>
        <hearth-avatar .client=${h.client} .mxc=${partner ? h.avatarUrl(partner, room) : (room.getMxcAvatarUrl() ?? undefined)} .name=${name}
          .seed=${partner ?? room.roomId} .presence=${partner ? h.presence(partner).state : undefined} .size=${40}></hearth-avatar>
        <div class="title"><h2>${name}</h2><div class="sub">${sub}</div></div>
        ${partner ? nothing : html`<button class="icon-btn" aria-label="Invite friends" @click=${() => (this.inviting = !this.inviting)}>${icons.plus}</button>`}
        <button class="icon-btn" aria-label=${partner ? 'Remove friend' : 'Leave group'} title=${partner ? 'Remove friend' : 'Leave group'} @click=${() => void this.leave()}>${icons.leave}</button>
      </header>
      ${this.inviting
        ? html`<div class="invite-panel"><strong>Invite:</strong>
            ${friendsToInvite.length === 0 ? html`<span class="muted">All your friends are here.</span>` : nothing}
            ${friendsToInvite.map((f) => html`<button class="btn small secondary" @click=${() => void h.client.invite(room.roomId, f.userId)}>${h.displayName(f.userId)}</button>`)}
          </div>`
        : nothing}
      <hearth-timeline .hearth=${h} .room=${room} .highlight=${this.highlight}
        @dragover=${(e: DragEvent) => {
          e.preventDefault();
          this.dragging = true;
        }}
        @dragleave=${() => (this.dragging = false)}
        @drop=${(e: DragEvent) => this.onDrop(e)}></hearth-timeline>
      <div class="typing" aria-live="polite">${typing.length ? `${typing.join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : ''}</div>
      <hearth-composer .hearth=${h} .room=${room} .replyTo=${this.replyTo} .editing=${this.editing}></hearth-composer>
      ${this.dragging ? html`<div class="drop">Drop files to send</div>` : nothing}`;
  }
}
customElements.define('hearth-room', HearthRoom);
