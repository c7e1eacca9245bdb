/** Moments: post text with up to 9 photos; the feed of friends' posts with likes and comments. */
import { css, html, nothing } from 'lit';
import { HearthElement } from './base.js';
import { relativeTime } from './format.js';
import { icons } from './icons.js';
import { MAX_MOMENT_IMAGES } from '../state/namespace.js';
import type { Moment } from '../state/hearth.js';
import { shared } from './styles.js';
import './avatar.js';
import './media-image.js';

export class HearthMoments extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    files: { state: true },
    posting: { state: true },
    progress: { state: true },
  };
  declare files: File[];
  declare posting: boolean;
  declare progress: number;
  private previews = new Map<File, string>();

  constructor() {
    super();
    this.files = [];
    this.posting = false;
    this.progress = 0;
  }

  static override styles = [
    shared,
    css`
      :host { display: flex; flex-direction: column; height: 100%; background: var(--bg); }
      .content { overflow-y: auto; flex: 1; padding: 20px 24px 40px; }
      .feed { max-width: 640px; margin: 0 auto; display: flex; flex-direction: column; gap: 16px; }
      .new { padding: 16px; }
      .new textarea { min-height: 80px; border: none; background: transparent; padding: 4px 2px; font-size: 16px; }
      .new textarea:focus { background: transparent; }
      .new .bar { display: flex; align-items: center; gap: 8px; border-top: 1px solid var(--border); padding-top: 12px; margin-top: 8px; }
      .thumbs { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
      .thumbs div { position: relative; width: 76px; height: 76px; }
      .thumbs img { width: 100%; height: 100%; object-fit: cover; border-radius: 10px; }
      .thumbs button { position: absolute; top: -6px; right: -6px; width: 22px; height: 22px; border-radius: 50%; border: none; background: var(--text); color: var(--bg); font-size: 13px; line-height: 1; padding: 0; }
      .post { padding: 16px 18px; }
      .post header { display: flex; align-items: center; gap: 12px; }
      .post header .who { flex: 1; }
      .post header .name { font-weight: 700; }
      .post header time { font-size: 12.5px; color: var(--muted); }
      .text { margin: 12px 0 4px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 15.5px; }
      .grid { display: grid; gap: 4px; margin-top: 10px; border-radius: 12px; overflow: hidden; }
      .grid.n1 { grid-template-columns: minmax(0, 420px); }
      .grid.n2, .grid.n4 { grid-template-columns: repeat(2, 1fr); }
      .grid.n3, .grid.many { grid-template-columns: repeat(3, 1fr); }
      .stats { display: flex; gap: 4px; margin-top: 10px; padding-top: 8px; border-top: 1px solid var(--border); }
      .stats button { display: inline-flex; align-items: center; gap: 6px; border: none; background: none; padding: 6px 12px; border-radius: 999px; color: var(--muted); font-weight: 600; }
      .stats button:hover { background: var(--surface-3); }
      .stats button svg { width: 20px; height: 20px; }
      .stats button.liked { color: #e11d48; }
      .likers { font-size: 13px; color: var(--muted); margin-top: 6px; }
      .comments { background: var(--surface-2); border-radius: 10px; padding: 8px 12px; margin-top: 8px; display: flex; flex-direction: column; gap: 6px; }
      .comment { font-size: 14px; }
      .comment strong { margin-right: 6px; }
      .comment-form { display: flex; gap: 8px; margin-top: 8px; }
      .comment-form .input { height: 36px; border-radius: 999px; }
      input[type='file'] { display: none; }
      @media (max-width: 760px) { .content { padding: 12px 10px 24px; } }
    `,
  ];

  private addFiles(list: FileList | File[]): void {
    const images = [...list].filter((f) => f.type.startsWith('image/'));
    this.files = [...this.files, ...images].slice(0, MAX_MOMENT_IMAGES);
  }

  private preview(file: File): string {
    let url = this.previews.get(file);
    if (!url) {
      url = URL.createObjectURL(file);
      this.previews.set(file, url);
    }
    return url;
  }

  private async post(): Promise<void> {
    const area = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea.compose')!;
    const text = area.value;
    if (!text.trim() && this.files.length === 0) return;
    this.posting = true;
    this.progress = 0;
    try {
      await this.hearth.postMoment(text, this.files, (p) => (this.progress = p));
      area.value = '';
      this.files = [];
    } catch (error) {
      this.toast(error instanceof Error ? error.message : 'Posting failed');
    } finally {
      this.posting = false;
    }
  }

  private async comment(moment: Moment, form: HTMLFormElement): Promise<void> {
    const input = form.querySelector('input')!;
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    await this.hearth.comment(moment, text);
  }

  private renderPost(m: Moment) {
    const h = this.hearth;
    const own = m.author === h.userId;
    const count = m.images.length;
    const gridClass = count === 1 ? 'n1' : count === 2 ? 'n2' : count === 3 ? 'n3' : count === 4 ? 'n4' : 'many';
    return html`<article class="card post" data-moment=${m.event.getId()!} data-author=${m.author}>
      <header>
        <hearth-avatar .client=${h.client} .mxc=${h.avatarUrl(m.author, m.room)} .name=${h.displayName(m.author, m.room)} .seed=${m.author} .size=${44}></hearth-avatar>
        <div class="who"><div class="name">${h.displayName(m.author, m.room)}</div><time>${relativeTime(m.event.getTs())}</time></div>
        ${own ? html`<button class="icon-btn" aria-label="Delete post" @click=${() => confirm('Delete this moment?') && void h.deleteMoment(m)}>${icons.trash}</button>` : nothing}
      </header>
      ${m.text && !(count > 0 && /^Shared \d+ photos?$/.test(m.text)) ? html`<div class="text">${m.text}</div>` : nothing}
      ${count
        ? html`<div class="grid ${gridClass}">${m.images.map(
            (img) => html`<hearth-image .client=${h.client} mxc=${img.url} ?square=${count > 1} .width=${img.info?.w} .height=${img.info?.h} alt="Photo"></hearth-image>`,
          )}</div>`
        : nothing}
      <div class="stats">
        <button class="like ${m.myLike ? 'liked' : ''}" aria-pressed=${m.myLike ? 'true' : 'false'} aria-label="Like" @click=${() => void h.toggleLike(m)}>
          ${m.myLike ? icons.heartFilled : icons.heart}<span class="like-count">${m.likes.length}</span>
        </button>
        <button aria-label="Comment" @click=${(e: Event) => (e.currentTarget as HTMLElement).closest('article')?.querySelector<HTMLInputElement>('.comment-form input')?.focus()}>
          ${icons.comment}<span class="comment-count">${m.comments.length}</span>
        </button>
      </div>
      ${m.likes.length ? html`<div class="likers">❤️ ${m.likes.map((l) => h.displayName(l.getSender()!, m.room)).join(', ')}</div>` : nothing}
      ${m.comments.length
        ? html`<div class="comments">${m.comments.map(
            (c) => html`<div class="comment"><strong>${h.displayName(c.getSender()!, m.room)}</strong>${String(c.getContent().body ?? '')}</div>`,
          )}</div>`
        : nothing}
      <form class="comment-form" @submit=${(e: Event) => {
        e.preventDefault();
        void this.comment(m, e.target as HTMLFormElement);
      }}>
        <input class="input" placeholder="Write a comment…" aria-label="Write a comment" />
        <button class="btn small" type="submit">Send</button>
      </form>
    </article>`;
  }

  override render() {
    const moments = this.hearth.moments();
    return html`
      <header class="page-header"><h1>Moments</h1></header>
      <div class="content"><div class="feed">
        <div class="card new" @dragover=${(e: DragEvent) => e.preventDefault()} @drop=${(e: DragEvent) => {
          e.preventDefault();
          if (e.dataTransfer) this.addFiles(e.dataTransfer.files);
        }}>
          <textarea class="input compose" placeholder="What's new? Share a moment with your friends…" aria-label="New moment"
            @paste=${(e: ClipboardEvent) => e.clipboardData?.files.length && this.addFiles(e.clipboardData.files)}></textarea>
          ${this.files.length
            ? html`<div class="thumbs">${this.files.map(
                (f, i) => html`<div><img src=${this.preview(f)} alt=${f.name} /><button aria-label="Remove ${f.name}"
                  @click=${() => (this.files = this.files.filter((_, j) => j !== i))}>×</button></div>`,
              )}</div>`
            : nothing}
          ${this.posting ? html`<div class="progress" role="progressbar"><div style="width:${this.progress * 100}%"></div></div>` : nothing}
          <div class="bar">
            <button class="btn small secondary" ?disabled=${this.files.length >= MAX_MOMENT_IMAGES}
              @click=${() => this.renderRoot.querySelector<HTMLInputElement>('input[type=file]')?.click()}>${icons.image} Photos</button>
            <input type="file" accept="image/*" multiple aria-label="Choose photos" @change=${(e: Event) => {
              const input = e.target as HTMLInputElement;
              if (input.files) this.addFiles(input.files);
              input.value = '';
            }} />
            <span class="muted" style="font-size:13px">${this.files.length}/${MAX_MOMENT_IMAGES}</span>
            <span class="spacer"></span>
            <button class="btn" ?disabled=${this.posting} @click=${() => void this.post()}>${this.posting ? 'Posting…' : 'Post'}</button>
          </div>
        </div>
        ${moments.length === 0 ? html`<div class="empty">No moments yet. Share the first one — your friends will see it here.</div>` : nothing}
        ${moments.map((m) => this.renderPost(m))}
      </div></div>`;
  }
}
customElements.define('hearth-moments', HearthMoments);
