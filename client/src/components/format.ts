/** Small formatting helpers: times, day labels, previews of events. */
import type { MatrixEvent } from 'matrix-js-sdk';
import { VOICE_FLAG } from '../state/namespace.js';
import { stripReplyFallback } from '../state/markdown.js';

export function shortTime(ts: number): string {
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const days = (now.getTime() - ts) / 86_400_000;
  if (days < 6) return d.toLocaleDateString([], { weekday: 'short' });
  return d.toLocaleDateString([], { day: 'numeric', month: 'short' });
}

export function clockTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function dayLabel(ts: number): string {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long', year: d.getFullYear() === today.getFullYear() ? undefined : 'numeric' });
}

export function relativeTime(ts: number): string {
  const seconds = Math.max(0, (Date.now() - ts) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return shortTime(ts);
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function preview(event: MatrixEvent | undefined): string {
  if (!event) return '';
  if (event.isRedacted()) return 'Message deleted';
  const content = event.getContent();
  switch (content.msgtype) {
    case 'm.image':
      return '📷 Photo';
    case 'm.video':
      return '🎬 Video';
    case 'm.audio':
      return content[VOICE_FLAG] !== undefined ? '🎤 Voice message' : '🎵 Audio';
    case 'm.file':
      return `📎 ${String(content.body ?? 'File')}`;
    default:
      return stripReplyFallback(String(content.body ?? ''));
  }
}

export function fileSize(bytes: number | undefined): string {
  if (!bytes) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
