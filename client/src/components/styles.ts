/** Styles shared by every component (buttons, fields, cards, avatars), on the theme's variables. */
import { css } from 'lit';

export const shared = css`
  :host { color: var(--text); font-family: var(--font); }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  button, input, textarea, select { font: inherit; color: inherit; }
  button { cursor: pointer; }
  button:focus-visible, input:focus-visible, textarea:focus-visible, a:focus-visible, [tabindex]:focus-visible {
    outline: 2px solid var(--primary);
    outline-offset: 2px;
  }
  .btn {
    display: inline-flex; align-items: center; justify-content: center; gap: 6px;
    height: 38px; padding: 0 16px; border-radius: 999px; border: 1px solid transparent;
    background: var(--primary); color: var(--on-primary); font-weight: 600; white-space: nowrap;
    transition: background 0.15s, opacity 0.15s;
  }
  .btn svg { width: 18px; height: 18px; flex: none; }
  .btn:hover { background: var(--primary-strong); }
  .btn:disabled { opacity: 0.55; cursor: default; }
  .btn.secondary { background: var(--surface-3); color: var(--text); }
  .btn.secondary:hover { background: var(--border); }
  .btn.ghost { background: transparent; color: var(--text); border-color: var(--border); }
  .btn.ghost:hover { background: var(--surface-3); }
  .btn.danger { background: var(--danger); color: #fff; }
  .btn.small { height: 30px; padding: 0 12px; font-size: 13px; }
  .icon-btn {
    display: inline-flex; align-items: center; justify-content: center; width: 36px; height: 36px;
    border-radius: 50%; border: none; background: transparent; color: var(--muted); padding: 0;
  }
  .icon-btn:hover { background: var(--surface-3); color: var(--text); }
  .icon-btn svg { width: 20px; height: 20px; }
  .field { display: flex; flex-direction: column; gap: 6px; margin-bottom: 14px; }
  .field label { font-size: 13px; font-weight: 600; color: var(--muted); }
  .input {
    width: 100%; height: 42px; padding: 0 14px; border-radius: var(--radius-sm);
    border: 1px solid var(--border); background: var(--surface-2); outline: none;
  }
  .input:focus { border-color: var(--primary); background: var(--surface); }
  textarea.input { height: auto; padding: 10px 14px; resize: none; }
  .card { background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow); }
  .muted { color: var(--muted); }
  .error { color: var(--danger); background: var(--danger-soft); border-radius: var(--radius-sm); padding: 10px 12px; font-size: 14px; }
  .empty { color: var(--muted); text-align: center; padding: 32px 16px; font-size: 14px; }
  .section-title { font-size: 12px; font-weight: 700; letter-spacing: 0.06em; text-transform: uppercase; color: var(--muted); margin: 18px 0 8px; }
  .badge {
    min-width: 20px; height: 20px; padding: 0 6px; border-radius: 999px; background: var(--accent); color: #fff;
    font-size: 12px; font-weight: 700; display: inline-flex; align-items: center; justify-content: center;
  }
  .progress { height: 4px; border-radius: 2px; background: var(--surface-3); overflow: hidden; }
  .progress > div { height: 100%; background: var(--primary); transition: width 0.2s; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  .page-header {
    display: flex; align-items: center; gap: 12px; min-height: 64px; padding: 0 20px;
    border-bottom: 1px solid var(--border); background: var(--surface);
  }
  .page-header h1, .page-header h2 { font-size: 18px; margin: 0; font-weight: 700; }
  .spacer { flex: 1; }
`;
