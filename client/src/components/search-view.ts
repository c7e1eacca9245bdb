/** Search messages in one chat or all of them; a result opens the chat at that message. */
import { css, html, nothing } from 'lit';
import type { ISearchResponse } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { shortTime } from './format.js';
import { icons } from './icons.js';
import { shared } from './styles.js';
import './avatar.js';

interface Hit {
  eventId: string;
  roomId: string;
  sender: string;
  body: string;
  ts: number;
}

export class HearthSearch extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    hits: { state: true },
    searching: { state: true },
    searched: { state: true },
    scope: { state: true },
    error: { state: true },
  };
  declare hits: Hit[];
  declare searching: boolean;
  declare searched: string;
  declare scope: string;
  declare error: string;

  constructor() {
    super();
    this.hits = [];
    this.searching = false;
    this.searched = '';
    this.scope = new URLSearchParams(location.search).get('room') ?? '';
    this.error = '';
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--bg); }
      .content { overflow-y: auto; flex: 1; padding: 20px 24px; }
      .inner { max-width: 760px; margin: 0 auto; }
      form { display: flex; gap: 8px; flex-wrap: wrap; }
      form .input { flex: 1; min-width: 200px; }
      form .btn { height: 42px; }
      select.input { flex: 0 0 200px; min-width: 0; }
      .list { margin-top: 16px; }
      .hit { display: flex; gap: 12px; padding: 12px 16px; cursor: pointer; border: none; background: none; width: 100%; text-align: left; align-items: flex-start; }
      .hit + .hit { border-top: 1px solid var(--border); }
      .hit:hover { background: var(--surface-2); }
      .hit .top { display: flex; gap: 8px; font-size: 13px; color: var(--muted); }
      .hit .top strong { color: var(--text); }
      .hit .text { margin-top: 2px; overflow-wrap: anywhere; }
      mark { background: #fde68a; color: #1f2937; border-radius: 3px; padding: 0 2px; }
      @media (max-width: 760px) { .content { padding: 12px; } select.input { flex: 1 1 100%; } }
    `,
  ];

  private async search(event: Event): Promise<void> {
    event.preventDefault();
    const term = (this.renderRoot.querySelector<HTMLInputElement>('input[name=term]')?.value ?? '').trim();
    if (!term) return;
    this.searching = true;
    this.error = '';
    try {
      const filter = this.scope ? { rooms: [this.scope] } : undefined;
      const response: ISearchResponse = await this.hearth.client.search({
        body: { search_categories: { room_events: { search_term: term, order_by: 'recent' as never, filter: filter as never } } },
      });
      const results = response.search_categories.room_events?.results ?? [];
      this.hits = results.map((r) => ({
        eventId: r.result.event_id!,
        roomId: r.result.room_id!,
        sender: r.result.sender!,
        body: String(r.result.content?.body ?? ''),
        ts: r.result.origin_server_ts!,
      }));
      this.searched = term;
    } catch (error) {
      this.error = error instanceof Error ? error.message : 'Search failed';
    } finally {
      this.searching = false;
    }
  }

  private mark(text: string) {
    const words = this.searched.split(/\s+/).filter(Boolean).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    if (!words.length) return text;
    const parts = text.split(new RegExp(`(${words.join('|')})`, 'gi'));
    return parts.map((p, i) => (i % 2 ? html`<mark>${p}</mark>` : p));
  }

  override render() {
    const h = this.hearth;
    const chats = h.chats();
    return html`
      <header class="page-header"><h1>Search</h1></header>
      <div class="content"><div class="inner">
        <form @submit=${(e: Event) => void this.search(e)} role="search">
          <input class="input" name="term" type="search" placeholder="Search messages" aria-label="Search messages" autofocus />
          <select class="input" aria-label="Where to search" .value=${this.scope} @change=${(e: Event) => (this.scope = (e.target as HTMLSelectElement).value)}>
            <option value="">All chats</option>
            ${chats.map((r) => html`<option value=${r.roomId} ?selected=${r.roomId === this.scope}>${h.roomName(r)}</option>`)}
          </select>
          <button class="btn" ?disabled=${this.searching}>${icons.search} Search</button>
        </form>
        ${this.error ? html`<div class="error" style="margin-top:12px">${this.error}</div>` : nothing}
        ${this.searched
          ? html`<div class="section-title">${this.hits.length} result${this.hits.length === 1 ? '' : 's'} for “${this.searched}”</div>
              <div class="card list" aria-label="Search results">
                ${this.hits.length === 0 ? html`<div class="empty">No messages match.</div>` : nothing}
                ${this.hits.map((hit) => {
                  const room = h.client.getRoom(hit.roomId);
                  return html`<button class="hit" data-event=${hit.eventId}
                    @click=${() => this.navigate(`/chats/${encodeURIComponent(hit.roomId)}?event=${encodeURIComponent(hit.eventId)}`)}>
                    <hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(hit.sender, room ?? undefined)} .name=${h.displayName(hit.sender, room ?? undefined)} .seed=${hit.sender} .size=${36}></hearth-avatar>
                    <div style="flex:1;min-width:0">
                      <div class="top"><strong>${h.displayName(hit.sender, room ?? undefined)}</strong><span>in ${room ? h.roomName(room) : hit.roomId}</span><span class="spacer"></span><span>${shortTime(hit.ts)}</span></div>
                      <div class="text">${this.mark(hit.body)}</div>
                    </div>
                  </button>`;
                })}
              </div>`
          : html`<div class="empty">Find any message you have sent or received. Pick a chat to search only there.</div>`}
      </div></div>`;
  }
}
customElements.define('hearth-search', HearthSearch);
