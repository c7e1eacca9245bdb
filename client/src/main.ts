/** Entry point: theme, the app shell, and the service worker for the app shell (production only). */
import { applyTheme } from './theme.js';
import './components/app-shell.js';

applyTheme();
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => undefined);
  });
}
