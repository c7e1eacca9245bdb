/** Screenshot: capture a screen or window (getDisplayMedia), drag to crop, send as an image. */
import { LitElement, css, html, nothing } from 'lit';
import { shared } from './styles.js';

interface Box { x: number; y: number; w: number; h: number }

export class HearthScreenshot extends LitElement {
  static override properties = { shot: { state: true }, box: { state: true }, error: { state: true } };
  declare shot?: HTMLCanvasElement;
  declare box?: Box;
  declare error: string;
  private dragFrom?: { x: number; y: number };

  constructor() {
    super();
    this.error = '';
  }

  static override styles = [
    shared,
    css`
      .backdrop { position: fixed; inset: 0; z-index: 1200; background: rgba(0, 0, 0, 0.6); display: flex; align-items: center; justify-content: center; padding: 20px; }
      .card { padding: 20px; max-width: min(960px, 100%); max-height: 100%; display: flex; flex-direction: column; gap: 14px; }
      h2 { margin: 0; font-size: 18px; }
      .stage { position: relative; overflow: hidden; cursor: crosshair; user-select: none; touch-action: none; border-radius: 8px; }
      .stage img { display: block; max-width: 100%; max-height: 60vh; }
      .sel { position: absolute; border: 2px solid var(--accent); box-shadow: 0 0 0 9999px rgba(0, 0, 0, 0.45); pointer-events: none; }
      .actions { display: flex; gap: 8px; justify-content: flex-end; }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    void this.capture();
  }

  private async capture(): Promise<void> {
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const video = document.createElement('video');
      video.srcObject = stream;
      video.muted = true;
      await video.play();
      await new Promise((r) => requestAnimationFrame(r));
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d')!.drawImage(video, 0, 0);
      stream.getTracks().forEach((t) => t.stop());
      this.shot = canvas;
    } catch {
      this.error = 'The screen capture was cancelled or is not allowed.';
    }
  }

  private point(e: PointerEvent): { x: number; y: number } {
    const rect = (e.currentTarget as HTMLElement).getBoundingClientRect();
    return { x: Math.min(1, Math.max(0, (e.clientX - rect.left) / rect.width)), y: Math.min(1, Math.max(0, (e.clientY - rect.top) / rect.height)) };
  }

  private send(): void {
    const shot = this.shot!;
    const box = this.box && this.box.w > 0.01 && this.box.h > 0.01 ? this.box : { x: 0, y: 0, w: 1, h: 1 };
    const out = document.createElement('canvas');
    out.width = Math.round(box.w * shot.width);
    out.height = Math.round(box.h * shot.height);
    out.getContext('2d')!.drawImage(shot, box.x * shot.width, box.y * shot.height, out.width, out.height, 0, 0, out.width, out.height);
    out.toBlob((blob) => blob && this.dispatchEvent(new CustomEvent('shot', { detail: blob })), 'image/png');
  }

  private close(): void {
    this.dispatchEvent(new CustomEvent('close'));
  }

  override render() {
    const b = this.box;
    return html`<div class="backdrop" @keydown=${(e: KeyboardEvent) => e.key === 'Escape' && this.close()}>
      <div class="card" role="dialog" aria-label="Screenshot">
        <h2>Screenshot</h2>
        ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
        ${this.shot
          ? html`<p class="muted" style="margin:0">Drag over the picture to crop it, or send it whole.</p>
              <div class="stage"
                @pointerdown=${(e: PointerEvent) => {
                  (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
                  this.dragFrom = this.point(e);
                  this.box = undefined;
                }}
                @pointermove=${(e: PointerEvent) => {
                  if (!this.dragFrom) return;
                  const p = this.point(e);
                  this.box = { x: Math.min(p.x, this.dragFrom.x), y: Math.min(p.y, this.dragFrom.y), w: Math.abs(p.x - this.dragFrom.x), h: Math.abs(p.y - this.dragFrom.y) };
                }}
                @pointerup=${() => (this.dragFrom = undefined)}>
                <img src=${this.shot.toDataURL('image/png')} alt="Captured screen" draggable="false" />
                ${b ? html`<div class="sel" style="left:${b.x * 100}%;top:${b.y * 100}%;width:${b.w * 100}%;height:${b.h * 100}%"></div>` : nothing}
              </div>`
          : this.error
            ? nothing
            : html`<p class="muted">Choose a screen or window to capture…</p>`}
        <div class="actions">
          <button class="btn ghost" @click=${() => this.close()}>Cancel</button>
          ${b ? html`<button class="btn secondary" @click=${() => (this.box = undefined)}>Reset crop</button>` : nothing}
          <button class="btn" ?disabled=${!this.shot} @click=${() => this.send()}>Send</button>
        </div>
      </div>
    </div>`;
  }
}
customElements.define('hearth-screenshot', HearthScreenshot);
