/**
 * The composer: text with Markdown (sent as formatted_body), replies and edits, attachments with
 * upload progress (button, drag-and-drop, paste), voice messages (MediaRecorder) and screenshots.
 */
import { css, html, nothing } from 'lit';
import { EventType, RelationType, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { HearthElement } from './base.js';
import { duration, preview } from './format.js';
import { icons } from './icons.js';
import { markdownToHtml, stripReplyFallback } from '../state/markdown.js';
import { uploadFile } from '../state/media.js';
import { AUDIO_BLOCK, VOICE_FLAG } from '../state/namespace.js';
import { shared } from './styles.js';
import { resample } from './voice-player.js';
import './screenshot-dialog.js';

interface Upload {
  id: number;
  name: string;
  progress: number;
  error?: string;
}

interface Recording {
  recorder: MediaRecorder;
  stream: MediaStream;
  chunks: Blob[];
  started: number;
  levels: number[];
  timer: number;
  context: AudioContext;
  cancelled: boolean;
}

let uploadIds = 0;

export class HearthComposer extends HearthElement {
  static override properties = {
    ...HearthElement.properties,
    room: { attribute: false },
    replyTo: { attribute: false },
    editing: { attribute: false },
    uploads: { state: true },
    recording: { state: true },
    elapsed: { state: true },
    screenshot: { state: true },
  };
  declare room: Room;
  declare replyTo?: MatrixEvent;
  declare editing?: MatrixEvent;
  declare uploads: Upload[];
  declare recording?: Recording;
  declare elapsed: number;
  declare screenshot: boolean;
  private typingSent = 0;

  constructor() {
    super();
    this.uploads = [];
    this.elapsed = 0;
    this.screenshot = false;
  }

  static override styles = [
    shared,
    css`
      :host { display: block; padding: 8px 16px 14px; background: var(--surface); border-top: 1px solid var(--border); }
      .context {
        display: flex; align-items: center; gap: 10px; font-size: 13px; padding: 8px 12px; margin-bottom: 8px;
        background: var(--surface-2); border-left: 3px solid var(--primary); border-radius: 8px;
      }
      .context div { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
      .row { display: flex; align-items: flex-end; gap: 6px; }
      textarea {
        flex: 1; min-height: 42px; max-height: 180px; padding: 10px 16px; border-radius: 21px; border: 1px solid var(--border);
        background: var(--surface-2); resize: none; outline: none; line-height: 1.4;
      }
      textarea:focus { border-color: var(--primary); background: var(--surface); }
      .send { width: 42px; height: 42px; border-radius: 50%; padding: 0; }
      .send svg { width: 20px; height: 20px; }
      .uploads { display: flex; flex-direction: column; gap: 6px; margin-bottom: 8px; }
      .upload { display: grid; grid-template-columns: 1fr 48px; gap: 4px 10px; align-items: center; font-size: 13px; }
      .upload .progress { grid-column: 1 / -1; }
      .rec { display: flex; align-items: center; gap: 12px; height: 42px; flex: 1; padding: 0 14px; border-radius: 21px; background: var(--danger-soft); }
      .rec .dot { width: 10px; height: 10px; border-radius: 50%; background: var(--danger); animation: blink 1s infinite; }
      @keyframes blink { 50% { opacity: 0.3; } }
      .rec .bars { display: flex; align-items: center; gap: 2px; height: 26px; flex: 1; overflow: hidden; color: var(--danger); }
      .rec .bars span { width: 3px; border-radius: 2px; background: currentColor; flex: none; }
      .rec time { font-variant-numeric: tabular-nums; font-weight: 600; }
      input[type='file'] { display: none; }
    `,
  ];

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    super.willUpdate(changed);
    if (changed.has('editing') && this.editing) {
      const content = this.editing.getContent();
      void this.updateComplete.then(() => {
        const area = this.textarea();
        if (!area) return;
        area.value = stripReplyFallback(String(content.body ?? ''));
        area.focus();
      });
    }
    if (changed.has('replyTo') && this.replyTo) void this.updateComplete.then(() => this.textarea()?.focus());
  }

  private textarea(): HTMLTextAreaElement | null {
    return this.renderRoot.querySelector('textarea');
  }

  override focus(): void {
    this.textarea()?.focus();
  }

  private clearContext(): void {
    this.dispatchEvent(new CustomEvent('clear-context', { bubbles: true, composed: true }));
  }

  private onInput(): void {
    const area = this.textarea()!;
    area.style.height = 'auto';
    area.style.height = `${Math.min(area.scrollHeight + 2, 180)}px`;
    const now = Date.now();
    if (area.value.trim() && now - this.typingSent > 3000) {
      this.typingSent = now;
      void this.hearth.client.sendTyping(this.room.roomId, true, 6000).catch(() => undefined);
    }
  }

  private onKeyDown(event: KeyboardEvent): void {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void this.sendText();
    } else if (event.key === 'Escape' && (this.replyTo || this.editing)) {
      this.clearContext();
    } else if (event.key === 'ArrowUp' && !this.textarea()!.value) {
      const mine = [...this.room.getLiveTimeline().getEvents()]
        .reverse()
        .find((e) => e.getSender() === this.hearth.userId && e.getType() === EventType.RoomMessage && !e.isRedacted() && !e.getRelation() && e.getContent().msgtype === 'm.text');
      if (mine) this.dispatchEvent(new CustomEvent('edit', { detail: mine, bubbles: true, composed: true }));
    }
  }

  private async sendText(): Promise<void> {
    const area = this.textarea()!;
    const text = area.value.trim();
    if (!text) return;
    area.value = '';
    this.onInput();
    this.typingSent = 0;
    void this.hearth.client.sendTyping(this.room.roomId, false, 0).catch(() => undefined);
    const formatted = markdownToHtml(text);
    const content: Record<string, unknown> = { msgtype: 'm.text', body: text };
    if (formatted) Object.assign(content, { format: 'org.matrix.custom.html', formatted_body: formatted });
    const editing = this.editing;
    const replyTo = this.replyTo;
    this.clearContext();
    if (editing) {
      await this.hearth.client.sendMessage(this.room.roomId, {
        ...content,
        body: `* ${text}`,
        'm.new_content': content,
        'm.relates_to': { rel_type: RelationType.Replace, event_id: editing.getId()! },
      } as never);
      return;
    }
    if (replyTo) content['m.relates_to'] = { 'm.in_reply_to': { event_id: replyTo.getId()! } };
    await this.hearth.client.sendMessage(this.room.roomId, content as never);
  }

  /** Uploads and sends files as m.image / m.video / m.audio / m.file, with a progress bar each. */
  async sendFiles(files: File[]): Promise<void> {
    await Promise.all(files.map((file) => this.sendFile(file, file.name)));
  }

  private async sendFile(file: Blob, name: string, extra: Record<string, unknown> = {}): Promise<void> {
    const upload: Upload = { id: ++uploadIds, name, progress: 0 };
    this.uploads = [...this.uploads, upload];
    const set = (patch: Partial<Upload>) => {
      this.uploads = this.uploads.map((u) => (u.id === upload.id ? { ...u, ...patch } : u));
    };
    try {
      const { url, info } = await uploadFile(this.hearth.client, file, name, (progress) => set({ progress }));
      const type = file.type;
      const msgtype = type.startsWith('image/') ? 'm.image' : type.startsWith('video/') ? 'm.video' : type.startsWith('audio/') ? 'm.audio' : 'm.file';
      await this.hearth.client.sendMessage(this.room.roomId, { msgtype, body: name, filename: name, url, info, ...extra } as never);
      this.uploads = this.uploads.filter((u) => u.id !== upload.id);
    } catch (error) {
      set({ error: error instanceof Error ? error.message : 'Upload failed' });
      window.setTimeout(() => (this.uploads = this.uploads.filter((u) => u.id !== upload.id)), 5000);
    }
  }

  private onPaste(event: ClipboardEvent): void {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length === 0) return;
    event.preventDefault();
    void this.sendFiles(files);
  }

  // ------------------------------------------------------------------ voice messages

  private async startRecording(): Promise<void> {
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      this.toast('Hearth needs your microphone to record a voice message.');
      return;
    }
    const mimeType = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4'].find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const recording: Recording = { recorder, stream, chunks: [], started: Date.now(), levels: [], timer: 0, context, cancelled: false };
    recording.timer = window.setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += ((s - 128) / 128) ** 2;
      recording.levels.push(Math.min(1024, Math.round(Math.sqrt(sum / samples.length) * 4096)));
      this.elapsed = Date.now() - recording.started;
    }, 100);
    recorder.addEventListener('dataavailable', (e) => e.data.size > 0 && recording.chunks.push(e.data));
    recorder.addEventListener('stop', () => void this.finishRecording(recording));
    recorder.start(250);
    this.elapsed = 0;
    this.recording = recording;
  }

  private stopRecording(cancel: boolean): void {
    const recording = this.recording;
    if (!recording) return;
    recording.cancelled = cancel;
    recording.recorder.stop();
  }

  private async finishRecording(recording: Recording): Promise<void> {
    clearInterval(recording.timer);
    recording.stream.getTracks().forEach((t) => t.stop());
    void recording.context.close();
    this.recording = undefined;
    const durationMs = Date.now() - recording.started;
    if (recording.cancelled || durationMs < 300) return;
    const type = recording.recorder.mimeType || 'audio/webm';
    const blob = new Blob(recording.chunks, { type });
    const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
    // Waveform for MSC1767: at most 100 values in 0..1024, scaled to the loudest moment.
    const levels = recording.levels.length ? recording.levels : [0];
    const peak = Math.max(1, ...levels);
    const waveform = resample(levels, Math.min(100, levels.length)).map((v) => Math.round((v / peak) * 1024));
    await this.sendFile(blob, `Voice message.${ext}`, {
      body: 'Voice message',
      info: { mimetype: type.split(';')[0], size: blob.size, duration: durationMs },
      [AUDIO_BLOCK]: { duration: durationMs, waveform },
      [VOICE_FLAG]: {},
      'org.matrix.msc1767.text': 'Voice message',
    });
  }

  override render() {
    const context = this.editing ?? this.replyTo;
    const rec = this.recording;
    return html`
      ${this.uploads.length
        ? html`<div class="uploads">${this.uploads.map(
            (u) => html`<div class="upload" data-upload=${u.name}>
              <span>${u.error ? html`<span style="color:var(--danger)">${u.name}: ${u.error}</span>` : u.name}</span>
              <span class="muted">${Math.round(u.progress * 100)}%</span>
              <div class="progress" role="progressbar" aria-valuenow=${Math.round(u.progress * 100)} aria-valuemin="0" aria-valuemax="100"><div style="width:${u.progress * 100}%"></div></div>
            </div>`,
          )}</div>`
        : nothing}
      ${context
        ? html`<div class="context">
            ${this.editing ? icons.edit : icons.reply}
            <div><strong>${this.editing ? 'Editing' : `Replying to ${this.hearth.displayName(context.getSender()!, this.room)}`}</strong> · ${preview(context)}</div>
            <button class="icon-btn" aria-label="Cancel" @click=${() => this.clearContext()}>${icons.close}</button>
          </div>`
        : nothing}
      <div class="row">
        ${rec
          ? html`<div class="rec" role="status" aria-label="Recording">
              <span class="dot"></span><time data-elapsed=${this.elapsed}>${duration(this.elapsed)}</time>
              <div class="bars">${rec.levels.slice(-60).map((v) => html`<span style="height:${Math.max(8, (v / Math.max(1, ...rec.levels)) * 100)}%"></span>`)}</div>
            </div>
            <button class="icon-btn" aria-label="Cancel recording" @click=${() => this.stopRecording(true)}>${icons.trash}</button>
            <button class="btn send" aria-label="Send voice message" @click=${() => this.stopRecording(false)}>${icons.send}</button>`
          : html`<button class="icon-btn" aria-label="Attach files" @click=${() => this.renderRoot.querySelector<HTMLInputElement>('input[type=file]')?.click()}>${icons.attach}</button>
            <input type="file" multiple aria-label="Choose files" @change=${(e: Event) => {
              const input = e.target as HTMLInputElement;
              void this.sendFiles([...(input.files ?? [])]);
              input.value = '';
            }} />
            ${'getDisplayMedia' in (navigator.mediaDevices ?? {})
              ? html`<button class="icon-btn" aria-label="Send a screenshot" @click=${() => (this.screenshot = true)}>${icons.screen}</button>`
              : nothing}
            <textarea rows="1" placeholder="Write a message…" aria-label="Message" @input=${() => this.onInput()}
              @keydown=${(e: KeyboardEvent) => this.onKeyDown(e)} @paste=${(e: ClipboardEvent) => this.onPaste(e)}></textarea>
            <button class="icon-btn" aria-label="Record a voice message" @click=${() => void this.startRecording()}>${icons.mic}</button>
            <button class="btn send" aria-label="Send" @click=${() => void this.sendText()}>${icons.send}</button>`}
      </div>
      ${this.screenshot
        ? html`<hearth-screenshot @close=${() => (this.screenshot = false)}
            @shot=${(e: CustomEvent<Blob>) => {
              this.screenshot = false;
              void this.sendFile(e.detail, `Screenshot ${new Date().toISOString().slice(0, 19).replace('T', ' ')}.png`);
            }}></hearth-screenshot>`
        : nothing}`;
  }
}
customElements.define('hearth-composer', HearthComposer);
