/** Plays a voice message (or any audio) inline: play/pause, waveform with progress, duration. */
import { LitElement, css, html } from 'lit';
import type { MatrixClient } from 'matrix-js-sdk';
import { mediaBlobUrl } from '../state/media.js';
import { duration } from './format.js';
import { icons } from './icons.js';

export class HearthVoice extends LitElement {
  static override properties = {
    client: { attribute: false },
    mxc: {},
    durationMs: { type: Number },
    waveform: { attribute: false },
    own: { type: Boolean },
    state: { reflect: true },
    progress: { state: true },
  };
  declare client: MatrixClient;
  declare mxc: string;
  declare durationMs: number;
  declare waveform: number[];
  declare own: boolean;
  /** idle | loading | playing | paused | ended (reflected, for tests and styling) */
  declare state: string;
  declare progress: number;
  private audio?: HTMLAudioElement;

  constructor() {
    super();
    this.durationMs = 0;
    this.waveform = [];
    this.own = false;
    this.state = 'idle';
    this.progress = 0;
  }

  static override styles = css`
    :host { display: inline-flex; align-items: center; gap: 10px; min-width: 220px; max-width: 100%; }
    button {
      width: 36px; height: 36px; border-radius: 50%; border: none; display: flex; align-items: center; justify-content: center;
      background: var(--primary); color: var(--on-primary); cursor: pointer; flex: none; padding: 0;
    }
    :host([own]) button { background: rgba(255, 255, 255, 0.92); color: var(--bubble-own); }
    button svg { width: 16px; height: 16px; }
    .wave { display: flex; align-items: center; gap: 2px; height: 30px; flex: 1; min-width: 120px; }
    .wave span { flex: 1; min-width: 2px; border-radius: 2px; background: currentColor; opacity: 0.35; }
    .wave span.done { opacity: 1; }
    .time { font-size: 12px; font-variant-numeric: tabular-nums; opacity: 0.8; min-width: 34px; }
  `;

  private async toggle(): Promise<void> {
    if (this.audio && this.state === 'playing') {
      this.audio.pause();
      return;
    }
    if (!this.audio) {
      this.state = 'loading';
      const src = await mediaBlobUrl(this.client, this.mxc);
      const audio = new Audio(src);
      audio.addEventListener('playing', () => (this.state = 'playing'));
      audio.addEventListener('pause', () => {
        if (this.state !== 'ended') this.state = 'paused';
      });
      audio.addEventListener('ended', () => {
        this.state = 'ended';
        this.progress = 1;
      });
      audio.addEventListener('timeupdate', () => {
        const total = Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : this.durationMs / 1000;
        this.progress = total > 0 ? Math.min(1, audio.currentTime / total) : 0;
        this.dataset.played = String(audio.currentTime);
      });
      this.audio = audio;
    }
    if (this.state === 'ended') this.audio.currentTime = 0;
    await this.audio.play();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.audio?.pause();
  }

  override render() {
    const bars = resample(this.waveform.length ? this.waveform : Array.from({ length: 40 }, (_, i) => 300 + ((i * 137) % 500)), 40);
    const done = Math.round(this.progress * bars.length);
    // Quiet recordings still show a shape: scale to the loudest sample.
    const peak = Math.max(1, ...bars);
    const playing = this.state === 'playing';
    return html`<button @click=${() => void this.toggle()} aria-label=${playing ? 'Pause voice message' : 'Play voice message'}>
        ${playing ? icons.pause : icons.play}
      </button>
      <div class="wave" aria-hidden="true">
        ${bars.map((v, i) => html`<span class=${i < done ? 'done' : ''} style="height:${Math.max(12, (v / peak) * 100)}%"></span>`)}
      </div>
      <span class="time">${duration(playing || this.progress > 0 ? this.progress * this.durationMs : this.durationMs)}</span>`;
  }
}

export function resample(values: number[], count: number): number[] {
  if (values.length === 0) return [];
  return Array.from({ length: count }, (_, i) => {
    const from = Math.floor((i * values.length) / count);
    const to = Math.max(from + 1, Math.floor(((i + 1) * values.length) / count));
    const slice = values.slice(from, to);
    return slice.reduce((a, b) => a + b, 0) / slice.length;
  });
}
customElements.define('hearth-voice', HearthVoice);
