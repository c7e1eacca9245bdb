/**
 * Markdown in the composer becomes `formatted_body` (org.matrix.custom.html); incoming HTML is
 * sanitised to the tags the Matrix spec suggests before it is shown.
 */
import DOMPurify from 'dompurify';
import { marked } from 'marked';

const ALLOWED_TAGS = [
  'font', 'del', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'p', 'a', 'ul', 'ol', 'sup', 'sub', 'li', 'b', 'i',
  'u', 'strong', 'em', 'strike', 's', 'code', 'hr', 'br', 'div', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'caption',
  'pre', 'span', 'details', 'summary',
];

/** The formatted body for a message, or undefined when the Markdown adds nothing to plain text. */
export function markdownToHtml(text: string): string | undefined {
  const html = (marked.parse(text, { async: false, gfm: true, breaks: true }) as string).trim();
  const plain = `<p>${escapeHtml(text).replace(/\n/g, '<br>')}</p>`;
  if (html === plain || html === `<p>${escapeHtml(text)}</p>`) return undefined;
  return sanitizeHtml(html.replace(/^<p>([\s\S]*)<\/p>$/, (whole, inner: string) => (inner.includes('<p>') ? whole : inner)));
}

export function sanitizeHtml(html: string): string {
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ['href', 'data-mx-color', 'data-mx-bg-color', 'color', 'start', 'class'],
    ALLOWED_URI_REGEXP: /^(?:https?|mailto|matrix):/i,
  });
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The text of a reply without the legacy reply fallback (lines starting with "> "). */
export function stripReplyFallback(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith('> ')) i++;
  if (i > 0 && lines[i] === '') i++;
  return i > 0 ? lines.slice(i).join('\n') : body;
}

export function stripHtmlReplyFallback(html: string): string {
  return html.replace(/^<mx-reply>[\s\S]*?<\/mx-reply>/, '');
}
