/**
 * A room's timeline: messages grouped by sender and day, edits applied, replies quoted, reactions
 * aggregated, redactions shown as deleted, read receipts; scrolls back when you reach the top.
 */
import { css, html, nothing, type TemplateResult } from 'lit';
import { unsafeHTML } from 'lit/directives/unsafe-html.js';
import { EventType, RelationType, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { clockTime, dayLabel, preview } from './format.js';
import { icons } from './icons.js';
import { sanitizeHtml, stripHtmlReplyFallback, stripReplyFallback } from '../state/markdown.js';
import { AUDIO_BLOCK, VOICE_FLAG } from '../state/namespace.js';
import { shared } from './styles.js';
import './avatar.js';
import './media-image.js';
import './voice-player.js';
import './file-attachment.js';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const MEMBER_TEXT: Record<string, string> = { join: 'joined', leave: 'left', invite: 'was invited', ban: 'was banned' };

interface Aggregates {
  edits: Map<string, MatrixEvent>;
  reactions: Map<string, Map<string, MatrixEvent[]>>;
}

export class HearthTimeline extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    room: { attribute: false },
    highlight: {},
    loadingBack: { state: true },
    atStart: { state: true },
    reactingTo: { state: true },
  };
  declare room: Room;
  declare highlight?: string;
  declare loadingBack: boolean;
  declare atStart: boolean;
  declare reactingTo?: string;
  private stickToBottom = true;
  private lastReceipted?: string;
  private seeking?: string;
  private seekTask?: Promise<void>;
  private loading?: Promise<boolean>;

  constructor() {
    super();
    this.loadingBack = false;
    this.atStart = false;
  }

  static override styles = [
    shared,
    css`
      :host { display: block; overflow-y: auto; overflow-x: hidden; padding: 12px 20px 8px; scroll-behavior: auto; }
      .start { text-align: center; color: var(--muted); font-size: 13px; padding: 12px 0 20px; }
      .day { display: flex; align-items: center; gap: 12px; margin: 18px 0 10px; color: var(--muted); font-size: 12px; font-weight: 600; }
      .day::before, .day::after { content: ''; flex: 1; height: 1px; background: var(--border); }
      .system { text-align: center; font-size: 12.5px; color: var(--muted); margin: 6px 0; }
      .msg { display: flex; gap: 10px; align-items: flex-end; margin-top: 2px; position: relative; }
      .msg.first { margin-top: 12px; }
      .msg.own { flex-direction: row-reverse; }
      .avatar-slot { width: 34px; flex: none; }
      .body { max-width: min(72%, 560px); display: flex; flex-direction: column; align-items: flex-start; min-width: 0; }
      .own .body { align-items: flex-end; }
      .sender { font-size: 12.5px; font-weight: 600; color: var(--muted); margin: 0 12px 3px; }
      .bubble {
        background: var(--bubble-other); border: 1px solid var(--border); border-radius: 18px; padding: 8px 14px;
        overflow-wrap: anywhere; box-shadow: 0 1px 1px rgba(0, 0, 0, 0.03); position: relative;
      }
      .own .bubble { background: var(--bubble-own); color: var(--bubble-own-text); border-color: transparent; }
      .bubble.media { padding: 4px; background: transparent; border: none; box-shadow: none; }
      .bubble.deleted { font-style: italic; color: var(--muted); background: transparent; }
      .own .bubble.deleted { color: var(--muted); background: transparent; border: 1px dashed var(--border); }
      .bubble.highlight { outline: 3px solid var(--accent); outline-offset: 2px; }
      .bubble .text { white-space: pre-wrap; }
      .bubble .html p { margin: 0; }
      .bubble .html p + p { margin-top: 6px; }
      .bubble code { background: rgba(127, 127, 127, 0.18); padding: 1px 5px; border-radius: 5px; font-size: 0.92em; }
      .bubble pre { background: rgba(127, 127, 127, 0.14); padding: 8px; border-radius: 8px; overflow-x: auto; white-space: pre; }
      .bubble blockquote { margin: 4px 0; padding-left: 10px; border-left: 3px solid currentColor; opacity: 0.85; }
      .own .bubble a { color: inherit; }
      .quote {
        display: block; border: none; text-align: left; font-size: 13px; padding: 6px 10px; margin: 0 0 6px; border-radius: 10px;
        background: rgba(127, 127, 127, 0.14); border-left: 3px solid var(--primary); color: inherit; max-width: 100%; white-space: nowrap;
        overflow: hidden; text-overflow: ellipsis; cursor: pointer;
      }
      .own .quote { border-left-color: rgba(255, 255, 255, 0.8); }
      .quote strong { display: block; font-size: 12px; }
      .meta { font-size: 11px; color: var(--muted); margin: 3px 12px 0; display: flex; gap: 6px; align-items: center; }
      .reactions { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
      .reaction {
        border: 1px solid var(--border); background: var(--surface); border-radius: 999px; padding: 1px 8px; font-size: 13px;
        display: inline-flex; gap: 4px; align-items: center;
      }
      .reaction.mine { border-color: var(--primary); background: var(--primary-soft); }
      .actions {
        position: absolute; top: -14px; display: none; gap: 2px; background: var(--surface); border: 1px solid var(--border);
        border-radius: 999px; padding: 2px; box-shadow: var(--shadow); z-index: 2;
      }
      .msg:not(.own) .actions { left: 54px; }
      .own .actions { right: 10px; }
      .msg:hover .actions, .msg:focus-within .actions, .actions.open { display: flex; }
      .actions button { width: 30px; height: 30px; }
      .actions svg { width: 17px; height: 17px; }
      .picker { display: flex; gap: 2px; }
      .picker button { border: none; background: none; font-size: 18px; width: 32px; height: 32px; border-radius: 50%; }
      .picker button:hover { background: var(--surface-3); }
      .readers { display: flex; justify-content: flex-end; gap: 2px; margin: 3px 44px 0 0; align-items: center; font-size: 11px; color: var(--muted); }
      .readers.left { justify-content: flex-start; margin: 3px 0 0 44px; }
      .loading { text-align: center; color: var(--muted); font-size: 13px; padding: 8px; }
      @media (max-width: 760px) {
        :host { padding: 8px 10px; }
        .body { max-width: 84%; }
      }
    `,
  ];

  /** Pictures that finish loading grow the timeline: stay at the bottom if we were there. */
  private readonly resizes = new ResizeObserver(() => {
    if (this.stickToBottom && !this.seeking) this.scrollTop = this.scrollHeight;
  });

  override connectedCallback(): void {
    super.connectedCallback();
    this.addEventListener('scroll', this.onScroll, { passive: true });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.removeEventListener('scroll', this.onScroll);
    this.resizes.disconnect();
  }

  protected override firstUpdated(): void {
    const items = this.renderRoot.querySelector('.items');
    if (items) this.resizes.observe(items);
  }

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    super.willUpdate(changed);
    if (changed.has('room')) {
      this.stickToBottom = true;
      this.atStart = false;
      this.lastReceipted = undefined;
    }
    if (changed.has('highlight') && this.highlight) {
      this.seeking = this.highlight;
      this.stickToBottom = false;
    }
  }

  private readonly onScroll = (): void => {
    this.stickToBottom = this.scrollHeight - this.scrollTop - this.clientHeight < 40;
    if (this.scrollTop < 80) void this.loadOlder();
  };

  /** Scrolls back one page, keeping what the reader sees in place (one request at a time). */
  loadOlder(): Promise<boolean> {
    if (this.atStart) return Promise.resolve(false);
    this.loading ??= this.paginate().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async paginate(): Promise<boolean> {
    this.loadingBack = true;
    const before = this.scrollHeight - this.scrollTop;
    try {
      const room = this.room;
      const countBefore = room.getLiveTimeline().getEvents().length;
      await this.hearth.client.scrollback(room, 30);
      const gained = room.getLiveTimeline().getEvents().length - countBefore;
      if (gained === 0) this.atStart = true;
      return gained > 0;
    } catch {
      return false;
    } finally {
      this.loadingBack = false;
      await this.updateComplete;
      if (this.seeking) {
        // the seek scrolls
      } else if (this.stickToBottom) this.scrollTop = this.scrollHeight;
      else this.scrollTop = this.scrollHeight - before;
    }
  }

  protected override updated(): void {
    if (this.seeking) {
      this.seekTask ??= this.seek(this.seeking).finally(() => (this.seekTask = undefined));
      return;
    }
    if (this.stickToBottom) this.scrollTop = this.scrollHeight;
    this.sendReceipt();
    // A short first page that does not fill the view: fetch more so that scrolling is possible.
    if (!this.atStart && this.scrollHeight <= this.clientHeight + 10 && this.clientHeight > 0) void this.loadOlder();
  }

  /** Jumps to an event (a search result), paginating back until it is loaded. */
  private async seek(eventId: string): Promise<void> {
    await this.updateComplete;
    for (let page = 0; page < 40; page++) {
      const el = this.renderRoot.querySelector<HTMLElement>(`[data-event-id="${CSS.escape(eventId)}"]`);
      if (el) {
        this.seeking = undefined;
        el.scrollIntoView({ block: 'center' });
        return;
      }
      if (this.atStart) break;
      await this.loadOlder();
      await this.updateComplete;
    }
    this.seeking = undefined;
    if (this.seeking === undefined && !this.renderRoot.querySelector(`[data-event-id="${CSS.escape(eventId)}"]`)) {
      this.toast('That message is no longer in this room.');
    }
  }

  private sendReceipt(): void {
    if (document.visibilityState !== 'visible') return;
    const events = this.room.getLiveTimeline().getEvents();
    const last = [...events].reverse().find((e) => !e.isSending() && e.getId()?.startsWith('$'));
    if (!last || last.getId() === this.lastReceipted) return;
    this.lastReceipted = last.getId();
    if (last.getSender() === this.hearth.userId) return;
    void this.hearth.client.sendReadReceipt(last).catch(() => undefined);
  }

  private aggregate(events: MatrixEvent[]): Aggregates {
    const edits = new Map<string, MatrixEvent>();
    const reactions = new Map<string, Map<string, MatrixEvent[]>>();
    for (const e of events) {
      if (e.isRedacted()) continue;
      const rel = e.getRelation();
      if (!rel?.event_id) continue;
      if (rel.rel_type === RelationType.Replace && e.getType() === EventType.RoomMessage) {
        const target = this.room.findEventById(rel.event_id);
        if (target && target.getSender() !== e.getSender()) continue;
        const prev = edits.get(rel.event_id);
        if (!prev || prev.getTs() <= e.getTs()) edits.set(rel.event_id, e);
      } else if (rel.rel_type === RelationType.Annotation && e.getType() === EventType.Reaction && rel.key) {
        const byKey = reactions.get(rel.event_id) ?? new Map<string, MatrixEvent[]>();
        const list = byKey.get(rel.key) ?? [];
        if (!list.some((r) => r.getSender() === e.getSender())) list.push(e);
        byKey.set(rel.key, list);
        reactions.set(rel.event_id, byKey);
      }
    }
    return { edits, reactions };
  }

  private isShown(e: MatrixEvent): boolean {
    const type = e.getType();
    if (type === EventType.RoomMessage) return e.getRelation()?.rel_type !== RelationType.Replace || e.isRedacted();
    if (type === EventType.RoomMember) {
      const c = e.getContent();
      const p = e.getPrevContent();
      return c.membership !== p.membership;
    }
    return type === EventType.RoomCreate || type === EventType.RoomName;
  }

  private async toggleReaction(event: MatrixEvent, key: string, mine?: MatrixEvent): Promise<void> {
    this.reactingTo = undefined;
    if (mine) {
      await this.hearth.client.redactEvent(this.room.roomId, mine.getId()!);
      return;
    }
    await this.hearth.client.sendEvent(this.room.roomId, EventType.Reaction, {
      'm.relates_to': { rel_type: RelationType.Annotation, event_id: event.getId()!, key },
    } as never);
  }

  private act(name: 'reply' | 'edit', event: MatrixEvent): void {
    this.dispatchEvent(new CustomEvent(name, { detail: event, bubbles: true, composed: true }));
  }

  private async deleteMessage(event: MatrixEvent): Promise<void> {
    if (!confirm('Delete this message for everyone?')) return;
    await this.hearth.client.redactEvent(this.room.roomId, event.getId()!);
  }

  private renderContent(event: MatrixEvent, content: Record<string, unknown>, own: boolean): TemplateResult {
    const client = this.hearth.client;
    const info = (content.info ?? {}) as { w?: number; h?: number; size?: number; duration?: number; mimetype?: string };
    const url = typeof content.url === 'string' ? content.url : undefined;
    switch (content.msgtype) {
      case 'm.image':
        return url
          ? html`<hearth-image .client=${client} mxc=${url} alt=${String(content.body ?? 'image')} .width=${info.w} .height=${info.h}></hearth-image>`
          : html`${String(content.body ?? '')}`;
      case 'm.audio': {
        const audio = (content[AUDIO_BLOCK] ?? {}) as { duration?: number; waveform?: number[] };
        return url
          ? html`<hearth-voice .client=${client} mxc=${url} ?own=${own} .durationMs=${audio.duration ?? info.duration ?? 0}
              .waveform=${audio.waveform ?? []} data-voice=${content[VOICE_FLAG] !== undefined}></hearth-voice>`
          : html`${String(content.body ?? '')}`;
      }
      case 'm.video':
      case 'm.file':
        return url
          ? html`<hearth-file .client=${client} mxc=${url} name=${String(content.filename ?? content.body ?? 'file')} .size=${info.size}
              ?video=${content.msgtype === 'm.video'}></hearth-file>`
          : html`${String(content.body ?? '')}`;
      default: {
        const emote = content.msgtype === 'm.emote' ? `* ${this.hearth.displayName(event.getSender()!, this.room)} ` : '';
        if (content.format === 'org.matrix.custom.html' && typeof content.formatted_body === 'string') {
          return html`<div class="html">${emote}${unsafeHTML(sanitizeHtml(stripHtmlReplyFallback(content.formatted_body)))}</div>`;
        }
        return html`<span class="text">${emote}${stripReplyFallback(String(content.body ?? ''))}</span>`;
      }
    }
  }

  private renderMessage(event: MatrixEvent, agg: Aggregates, first: boolean, last: boolean, readers: string[]): TemplateResult {
    const h = this.hearth;
    const sender = event.getSender()!;
    const own = sender === h.userId;
    const id = event.getId()!;
    const group = h.dmPartner(this.room) === undefined;
    const edit = agg.edits.get(id);
    const original = event.getContent();
    const content = (edit?.getContent()['m.new_content'] as Record<string, unknown> | undefined) ?? original;
    const replyTo = (original['m.relates_to'] as { 'm.in_reply_to'?: { event_id?: string } } | undefined)?.['m.in_reply_to']?.event_id;
    const replied = replyTo ? this.room.findEventById(replyTo) : undefined;
    const redacted = event.isRedacted();
    const media = !redacted && ['m.image', 'm.video'].includes(String(content.msgtype));
    const reactions = agg.reactions.get(id);
    const textual = !redacted && ['m.text', 'm.emote', 'm.notice', undefined].includes(content.msgtype as string | undefined);
    return html`<div class="msg ${own ? 'own' : ''} ${first ? 'first' : ''}" data-event-id=${id} data-sender=${sender}>
      <div class="avatar-slot">${!own && last
        ? html`<hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(sender, this.room)} .name=${h.displayName(sender, this.room)} .seed=${sender} .size=${34}></hearth-avatar>`
        : nothing}</div>
      <div class="body">
        ${first && !own && group ? html`<div class="sender">${h.displayName(sender, this.room)}</div>` : nothing}
        <div class="bubble ${media ? 'media' : ''} ${redacted ? 'deleted' : ''} ${this.highlight === id ? 'highlight' : ''}" data-msgtype=${String(content.msgtype ?? '')}>
          ${replied && !redacted
            ? html`<button class="quote" @click=${() => this.jumpTo(replied.getId()!)}><strong>${h.displayName(replied.getSender()!, this.room)}</strong>${preview(replied)}</button>`
            : nothing}
          ${redacted ? 'Message deleted' : this.renderContent(event, content, own)}
        </div>
        ${reactions?.size
          ? html`<div class="reactions">${[...reactions].map(([key, list]) => {
              const mine = list.find((r) => r.getSender() === h.userId);
              return html`<button class="reaction ${mine ? 'mine' : ''}" title=${list.map((r) => h.displayName(r.getSender()!, this.room)).join(', ')}
                aria-label="${key} ${list.length}${mine ? ', you reacted' : ''}" @click=${() => void this.toggleReaction(event, key, mine)}>${key} <span>${list.length}</span></button>`;
            })}</div>`
          : nothing}
        ${last || edit || event.isSending()
          ? html`<div class="meta">${clockTime(event.getTs())}${edit && !redacted ? html`<span>· edited</span>` : nothing}${event.isSending() ? html`<span>· sending…</span>` : nothing}</div>`
          : nothing}
        ${readers.length
          ? html`<div class="readers ${own ? '' : 'left'}" data-readers=${readers.join(' ')} aria-label="Seen by ${readers.map((u) => h.displayName(u, this.room)).join(', ')}">
              ${group ? nothing : html`<span>Seen</span>`}
              ${readers.slice(0, 5).map(
                (u) => html`<hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(u, this.room)} .name=${h.displayName(u, this.room)} .seed=${u} .size=${16}></hearth-avatar>`,
              )}
            </div>`
          : nothing}
      </div>
      ${redacted
        ? nothing
        : html`<div class="actions ${this.reactingTo === id ? 'open' : ''}">
            ${this.reactingTo === id
              ? html`<div class="picker">${QUICK_REACTIONS.map(
                  (k) => html`<button aria-label="React ${k}" @click=${() => void this.toggleReaction(event, k, reactions?.get(k)?.find((r) => r.getSender() === h.userId))}>${k}</button>`,
                )}</div>`
              : html`<button class="icon-btn" aria-label="React" @click=${() => (this.reactingTo = id)}>${icons.smile}</button>
                  <button class="icon-btn" aria-label="Reply" @click=${() => this.act('reply', event)}>${icons.reply}</button>
                  ${own && textual ? html`<button class="icon-btn" aria-label="Edit" @click=${() => this.act('edit', event)}>${icons.edit}</button>` : nothing}
                  ${own ? html`<button class="icon-btn" aria-label="Delete" @click=${() => void this.deleteMessage(event)}>${icons.trash}</button>` : nothing}`}
          </div>`}
    </div>`;
  }

  private jumpTo(eventId: string): void {
    this.seeking = eventId;
    this.highlight = eventId;
  }

  private renderSystem(event: MatrixEvent): TemplateResult {
    const h = this.hearth;
    const c = event.getContent();
    if (event.getType() === EventType.RoomCreate) return html`<div class="system">${h.displayName(event.getSender()!, this.room)} started this conversation</div>`;
    if (event.getType() === EventType.RoomName) return html`<div class="system">${h.displayName(event.getSender()!, this.room)} named the group “${String(c.name ?? '')}”</div>`;
    const who = h.displayName(event.getStateKey()!, this.room);
    return html`<div class="system">${who} ${MEMBER_TEXT[String(c.membership)] ?? String(c.membership)}</div>`;
  }

  override render() {
    const events = this.room.getLiveTimeline().getEvents();
    const agg = this.aggregate(events);
    const readersAt = new Map<string, string[]>();
    for (const e of events) {
      const readers = this.room.getUsersReadUpTo(e).filter((u) => u !== this.hearth.userId && u !== e.getSender());
      if (readers.length) readersAt.set(e.getId()!, readers);
    }
    // Receipts on events we do not show (reactions, edits) move to the message before them.
    const out: TemplateResult[] = [];
    let lastDay = '';
    let pendingReaders: string[] = [];
    const shown = events.filter((e) => this.isShown(e));
    const shownIds = new Set(shown.map((e) => e.getId()));
    const readersFor = new Map<string, string[]>();
    let lastShownId: string | undefined;
    for (const e of events) {
      const id = e.getId()!;
      if (shownIds.has(id)) lastShownId = id;
      const r = readersAt.get(id);
      if (r && lastShownId) readersFor.set(lastShownId, [...new Set([...(readersFor.get(lastShownId) ?? []), ...r])]);
    }
    // A message opens a group (avatar, name) when the sender or the day changes or 5 minutes pass;
    // the group's last message carries the time.
    const groupsWith = (a: MatrixEvent | undefined, b: MatrixEvent | undefined): boolean =>
      a !== undefined && b !== undefined && a.getType() === EventType.RoomMessage && b.getType() === EventType.RoomMessage &&
      a.getSender() === b.getSender() && b.getTs() - a.getTs() <= 5 * 60_000 &&
      new Date(a.getTs()).toDateString() === new Date(b.getTs()).toDateString();
    shown.forEach((e, i) => {
      const day = new Date(e.getTs()).toDateString();
      if (day !== lastDay) {
        out.push(html`<div class="day" role="separator">${dayLabel(e.getTs())}</div>`);
        lastDay = day;
      }
      if (e.getType() !== EventType.RoomMessage) {
        out.push(this.renderSystem(e));
        return;
      }
      const first = !groupsWith(shown[i - 1], e);
      const last = !groupsWith(e, shown[i + 1]);
      pendingReaders = readersFor.get(e.getId()!) ?? [];
      out.push(this.renderMessage(e, agg, first, last, pendingReaders));
    });
    return html`${this.atStart ? html`<div class="start">This is the beginning of the conversation.</div>` : nothing}
      ${this.loadingBack ? html`<div class="loading">Loading older messages…</div>` : nothing}
      <div class="items">${out}</div>`;
  }
}
customElements.define('hearth-timeline', HearthTimeline);
