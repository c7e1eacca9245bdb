/** An image from the media repository: a thumbnail that opens the full-size picture. */
import { LitElement, css, html, nothing } from 'lit';
import type { MatrixClient } from 'matrix-js-sdk';
import { mediaBlobUrl } from '../state/media.js';

export class HearthImage extends LitElement {
  static override properties = {
    client: { attribute: false },
    mxc: {},
    alt: {},
    width: { type: Number },
    height: { type: Number },
    square: { type: Boolean },
    thumb: { state: true },
    full: { state: true },
    open: { state: true },
  };
  declare client: MatrixClient;
  declare mxc: string;
  declare alt: string;
  declare width?: number;
  declare height?: number;
  declare square: boolean;
  declare thumb?: string;
  declare full?: string;
  declare open: boolean;

  constructor() {
    super();
    this.alt = 'image';
    this.square = false;
    this.open = false;
  }

  static override styles = css`
    :host { display: block; }
    button.thumb {
      display: block; padding: 0; border: none; background: var(--surface-3); border-radius: 12px; overflow: hidden;
      cursor: zoom-in; max-width: 100%;
    }
    button.thumb img { display: block; max-width: 100%; max-height: 320px; object-fit: cover; }
    :host([square]) button.thumb { width: 100%; aspect-ratio: 1; }
    :host([square]) button.thumb img { width: 100%; height: 100%; max-height: none; }
    .placeholder { width: 220px; height: 160px; }
    :host([square]) .placeholder { width: 100%; height: 100%; }
    .lightbox {
      position: fixed; inset: 0; z-index: 1000; background: rgba(0, 0, 0, 0.86); display: flex;
      align-items: center; justify-content: center; padding: 24px; cursor: zoom-out;
    }
    .lightbox img { max-width: 100%; max-height: 100%; border-radius: 6px; box-shadow: 0 10px 40px rgba(0,0,0,.5); }
    .lightbox button {
      position: absolute; top: 16px; right: 16px; width: 40px; height: 40px; border-radius: 50%; border: none;
      background: rgba(255,255,255,0.15); color: #fff; font-size: 22px; cursor: pointer;
    }
  `;

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has('mxc') && this.client && this.mxc) {
      this.thumb = undefined;
      void mediaBlobUrl(this.client, this.mxc, { w: 640, h: 640 }).then((u) => (this.thumb = u)).catch(() => undefined);
    }
  }

  private readonly onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') this.open = false;
  };

  protected override updated(changed: Map<PropertyKey, unknown>): void {
    if (!changed.has('open')) return;
    if (this.open) {
      window.addEventListener('keydown', this.onKey);
      this.renderRoot.querySelector<HTMLButtonElement>('.lightbox button')?.focus();
    } else {
      window.removeEventListener('keydown', this.onKey);
    }
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('keydown', this.onKey);
  }

  private async show(): Promise<void> {
    this.open = true;
    this.full ??= await mediaBlobUrl(this.client, this.mxc).catch(() => this.thumb);
  }

  override render() {
    const ratio = this.width && this.height && !this.square ? `aspect-ratio:${this.width}/${this.height};width:min(${this.width}px, 100%)` : '';
    return html`<button class="thumb" style=${ratio} @click=${() => void this.show()} aria-label="Open ${this.alt} full size">
        ${this.thumb ? html`<img src=${this.thumb} alt=${this.alt} />` : html`<div class="placeholder"></div>`}
      </button>
      ${this.open
        ? html`<div class="lightbox" role="dialog" aria-label="Image viewer" @click=${() => (this.open = false)}>
            ${this.full ? html`<img class="full" src=${this.full} alt=${this.alt} />` : nothing}
            <button aria-label="Close">×</button>
          </div>`
        : nothing}`;
  }
}
customElements.define('hearth-image', HearthImage);
