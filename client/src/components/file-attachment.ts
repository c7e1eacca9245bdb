/** A file or video from the media repository: a download link, or an inline player for video. */
import { LitElement, css, html } from 'lit';
import type { MatrixClient } from 'matrix-js-sdk';
import { mediaBlobUrl } from '../state/media.js';
import { fileSize } from './format.js';
import { icons } from './icons.js';

export class HearthFile extends LitElement {
  static override properties = {
    client: { attribute: false },
    mxc: {},
    name: {},
    size: { type: Number },
    video: { type: Boolean },
    src: { state: true },
  };
  declare client: MatrixClient;
  declare mxc: string;
  declare name: string;
  declare size?: number;
  declare video: boolean;
  declare src?: string;

  constructor() {
    super();
    this.name = 'file';
    this.video = false;
  }

  static override styles = css`
    :host { display: block; }
    .file { display: flex; align-items: center; gap: 10px; padding: 4px 2px; min-width: 200px; }
    .icon { width: 40px; height: 40px; border-radius: 10px; background: rgba(127, 127, 127, 0.18); display: flex; align-items: center; justify-content: center; flex: none; }
    .icon svg { width: 20px; height: 20px; }
    .name { font-weight: 600; word-break: break-all; }
    .size { font-size: 12px; opacity: 0.75; }
    button { border: none; background: none; color: inherit; cursor: pointer; padding: 6px; border-radius: 8px; display: flex; }
    button svg { width: 20px; height: 20px; }
    video { display: block; max-width: 100%; max-height: 320px; border-radius: 12px; background: #000; }
  `;

  private async download(): Promise<void> {
    const url = await mediaBlobUrl(this.client, this.mxc);
    const a = document.createElement('a');
    a.href = url;
    a.download = this.name;
    a.click();
  }

  override render() {
    if (this.video && this.src) return html`<video src=${this.src} controls autoplay></video>`;
    return html`<div class="file">
      <div class="icon">${this.video ? icons.play : icons.file}</div>
      <div style="flex:1;min-width:0"><div class="name">${this.name}</div><div class="size">${fileSize(this.size)}</div></div>
      ${this.video
        ? html`<button aria-label="Play video" @click=${async () => (this.src = await mediaBlobUrl(this.client, this.mxc))}>${icons.play}</button>`
        : html`<button aria-label="Download ${this.name}" @click=${() => void this.download()}>${icons.download}</button>`}
    </div>`;
  }
}
customElements.define('hearth-file', HearthFile);
