/** A round avatar: the user's picture, or their initial on a colour derived from their id. */
import { LitElement, css, html, nothing } from 'lit';
import type { MatrixClient } from 'matrix-js-sdk';
import { mediaBlobUrl } from '../state/media.js';

const COLOURS = ['#0f766e', '#7c3aed', '#db2777', '#ea580c', '#2563eb', '#059669', '#ca8a04', '#4f46e5'];

export class HearthAvatar extends LitElement {
  static override properties = {
    client: { attribute: false },
    mxc: {},
    name: {},
    seed: {},
    size: { type: Number },
    presence: {},
    src: { state: true },
  };
  declare client?: MatrixClient;
  declare mxc?: string;
  declare name: string;
  declare seed: string;
  declare size: number;
  declare presence?: string;
  declare src?: string;

  constructor() {
    super();
    this.name = '?';
    this.seed = '';
    this.size = 40;
  }

  static override styles = css`
    :host { display: inline-block; position: relative; flex: none; }
    .av {
      border-radius: 50%; display: flex; align-items: center; justify-content: center; color: #fff;
      font-weight: 700; overflow: hidden; user-select: none;
    }
    img { width: 100%; height: 100%; object-fit: cover; }
    .dot {
      position: absolute; right: 0; bottom: 0; width: 28%; height: 28%; border-radius: 50%;
      border: 2px solid var(--surface); background: var(--muted);
    }
    .dot.online { background: var(--online); }
    .dot.unavailable { background: #f59e0b; }
  `;

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if ((changed.has('mxc') || changed.has('client')) && this.client) {
      this.src = undefined;
      const mxc = this.mxc;
      if (mxc) {
        const px = Math.max(64, this.size * 2);
        void mediaBlobUrl(this.client, mxc, { w: px, h: px })
          .then((url) => {
            if (this.mxc === mxc) this.src = url;
          })
          .catch(() => undefined);
      }
    }
  }

  override render() {
    const key = this.seed || this.name;
    let hash = 0;
    for (const ch of key) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    const colour = COLOURS[hash % COLOURS.length];
    const initial = (this.name.replace(/^@/, '')[0] ?? '?').toUpperCase();
    const s = `${this.size}px`;
    return html`<div class="av" style="width:${s};height:${s};font-size:${Math.round(this.size * 0.42)}px;background:${colour}" aria-hidden="true">
        ${this.src ? html`<img src=${this.src} alt="" />` : initial}
      </div>
      ${this.presence ? html`<span class="dot ${this.presence}" title=${this.presence}></span>` : nothing}`;
  }
}
customElements.define('hearth-avatar', HearthAvatar);
