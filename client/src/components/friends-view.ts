/** Friends: find people (user directory), requests in and out (live), the friend list. */
import { css, html, nothing } from 'lit';
import { HearthElement } from './base.js';
import { preview, relativeTime } from './format.js';
import { icons } from './icons.js';
import { shared } from './styles.js';
import './avatar.js';

interface DirectoryUser {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

export class HearthFriends extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    results: { state: true },
    searching: { state: true },
    term: { state: true },
    busy: { state: true },
  };
  declare results: DirectoryUser[];
  declare searching: boolean;
  declare term: string;
  declare busy: Set<string>;
  private searchTimer?: number;

  constructor() {
    super();
    this.results = [];
    this.searching = false;
    this.term = '';
    this.busy = new Set();
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--bg); }
      .content { overflow-y: auto; flex: 1; padding: 8px 24px 32px; }
      .inner { max-width: 760px; margin: 0 auto; }
      .search { margin-top: 16px; position: relative; }
      .search svg { position: absolute; left: 14px; top: 11px; width: 20px; height: 20px; color: var(--muted); }
      .search .input { padding-left: 42px; height: 44px; border-radius: 999px; background: var(--surface); }
      .list { padding: 4px; }
      .person { display: flex; align-items: center; gap: 14px; padding: 12px 14px; border-radius: 12px; }
      .person + .person { border-top: 1px solid var(--border); border-radius: 0; }
      .person .who { flex: 1; min-width: 0; }
      .person .name { font-weight: 600; }
      .person .detail { font-size: 13px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
      .person .actions { display: flex; gap: 8px; flex: none; }
      .friend { cursor: pointer; }
      .friend:hover { background: var(--surface-2); }
      .status { font-style: italic; }
      @media (max-width: 760px) { .content { padding: 8px 12px 24px; } .person { padding: 10px 8px; gap: 10px; } }
    `,
  ];

  private onSearch(value: string): void {
    this.term = value;
    clearTimeout(this.searchTimer);
    if (!value.trim()) {
      this.results = [];
      return;
    }
    this.searchTimer = window.setTimeout(() => void this.search(value.trim()), 250);
  }

  private async search(term: string): Promise<void> {
    this.searching = true;
    try {
      const response = await this.hearth.client.searchUserDirectory({ term, limit: 20 });
      if (term !== this.term.trim()) return;
      let results = response.results.filter((u) => u.user_id !== this.hearth.userId);
      // A full user id typed in finds that user even if the directory does not list them.
      if (/^@[^:]+:.+$/.test(term) && !results.some((u) => u.user_id === term)) results = [{ user_id: term }, ...results];
      this.results = results;
    } catch (error) {
      this.toast(error instanceof Error ? error.message : 'Search failed');
    } finally {
      this.searching = false;
    }
  }

  private async run(key: string, action: () => Promise<unknown>): Promise<void> {
    this.busy = new Set([...this.busy, key]);
    try {
      await action();
    } catch (error) {
      const e = error as { data?: { error?: string }; message?: string };
      this.toast(e.data?.error ?? e.message ?? 'That did not work');
    } finally {
      const next = new Set(this.busy);
      next.delete(key);
      this.busy = next;
    }
  }

  private avatar(userId: string, size = 44, presence?: string, mxc?: string, name?: string) {
    const h = this.hearth;
    return html`<hearth-avatar .client=${h.client} .mxc=${mxc ?? h.avatarUrl(userId)} .name=${name ?? h.displayName(userId)} .seed=${userId}
      .presence=${presence} .size=${size}></hearth-avatar>`;
  }

  override render() {
    const h = this.hearth;
    const friends = h.friends();
    const friendIds = new Set(friends.map((f) => f.userId));
    const requests = h.friendRequests();
    const incoming = requests.filter((r) => r.direction === 'incoming');
    const outgoing = requests.filter((r) => r.direction === 'outgoing');
    const pendingIds = new Set(requests.map((r) => r.userId));
    return html`
      <header class="page-header"><h1>Friends</h1><span class="spacer"></span><span class="muted">${friends.length} friend${friends.length === 1 ? '' : 's'}</span></header>
      <div class="content"><div class="inner">
        <div class="search">${icons.search}
          <input class="input" type="search" placeholder="Find people by name or @user:server" aria-label="Find people"
            .value=${this.term} @input=${(e: Event) => this.onSearch((e.target as HTMLInputElement).value)} />
        </div>
        ${this.term.trim()
          ? html`<div class="section-title">People</div>
              <div class="card list" aria-label="Search results">
                ${this.results.length === 0
                  ? html`<div class="empty">${this.searching ? 'Searching…' : 'Nobody found. Try their full user id, like @name:server.'}</div>`
                  : this.results.map((u) => {
                      const state = friendIds.has(u.user_id) ? 'friend' : pendingIds.has(u.user_id) ? 'pending' : 'none';
                      return html`<div class="person" data-user=${u.user_id}>
                        ${this.avatar(u.user_id, 44, undefined, u.avatar_url, u.display_name ?? u.user_id)}
                        <div class="who"><div class="name">${u.display_name ?? u.user_id.slice(1).split(':')[0]}</div><div class="detail">${u.user_id}</div></div>
                        <div class="actions">
                          ${state === 'friend'
                            ? html`<span class="muted">${icons.check} Friends</span>`
                            : state === 'pending'
                              ? html`<span class="muted">Request pending</span>`
                              : html`<button class="btn small" ?disabled=${this.busy.has(u.user_id)}
                                  @click=${() => void this.run(u.user_id, () => h.sendFriendRequest(u.user_id))}>${icons.plus} Add friend</button>`}
                        </div>
                      </div>`;
                    })}
              </div>`
          : nothing}
        ${incoming.length
          ? html`<div class="section-title">Friend requests</div>
              <div class="card list" aria-label="Incoming requests">
                ${incoming.map(
                  (r) => html`<div class="person" data-request=${r.userId}>
                    ${this.avatar(r.userId)}
                    <div class="who"><div class="name">${h.displayName(r.userId, r.room)}</div><div class="detail">${r.userId} wants to be your friend</div></div>
                    <div class="actions">
                      <button class="btn small" ?disabled=${this.busy.has(r.room.roomId)} @click=${() => void this.run(r.room.roomId, () => h.acceptFriendRequest(r.room))}>Accept</button>
                      <button class="btn small ghost" ?disabled=${this.busy.has(r.room.roomId)} @click=${() => void this.run(r.room.roomId, () => h.rejectFriendRequest(r.room))}>Decline</button>
                    </div>
                  </div>`,
                )}
              </div>`
          : nothing}
        ${outgoing.length
          ? html`<div class="section-title">Sent requests</div>
              <div class="card list" aria-label="Sent requests">
                ${outgoing.map(
                  (r) => html`<div class="person" data-pending=${r.userId}>
                    ${this.avatar(r.userId)}
                    <div class="who"><div class="name">${h.displayName(r.userId, r.room)}</div><div class="detail">Waiting for an answer · ${relativeTime(r.room.getLastActiveTimestamp())}</div></div>
                    <div class="actions"><button class="btn small ghost" @click=${() => void this.run(r.room.roomId, () => h.cancelFriendRequest(r.room))}>Cancel</button></div>
                  </div>`,
                )}
              </div>`
          : nothing}
        <div class="section-title">Your friends</div>
        <div class="card list" aria-label="Friends">
          ${friends.length === 0 ? html`<div class="empty">No friends yet. Search for people above and send a request.</div>` : nothing}
          ${friends.map((f) => {
            const p = h.presence(f.userId);
            const last = h.lastMessage(f.room);
            return html`<div class="person friend" data-friend=${f.userId} tabindex="0" role="button"
              @click=${() => this.navigate(`/chats/${encodeURIComponent(f.room.roomId)}`)}
              @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.navigate(`/chats/${encodeURIComponent(f.room.roomId)}`)}>
              ${this.avatar(f.userId, 48, p.state)}
              <div class="who">
                <div class="name">${h.displayName(f.userId, f.room)}</div>
                <div class="detail">${p.status ? html`<span class="status">“${p.status}”</span> · ` : nothing}${last ? preview(last) : p.state === 'online' ? 'Online' : 'Offline'}</div>
              </div>
              <div class="actions">
                <button class="icon-btn" aria-label="Remove ${h.displayName(f.userId)}" title="Remove friend" @click=${(e: Event) => {
                  e.stopPropagation();
                  if (confirm(`Remove ${h.displayName(f.userId)} from your friends?`)) void this.run(f.userId, () => h.removeFriend(f.userId));
                }}>${icons.trash}</button>
              </div>
            </div>`;
          })}
        </div>
      </div></div>`;
  }
}
customElements.define('hearth-friends', HearthFriends);
