/**
 * undici, loaded on the first outgoing request (federation, URL previews) rather than at start:
 * evaluating it is a sizeable share of start-up (docs/PERFORMANCE.md), and a server that never
 * federates or previews a URL never needs it.
 */
type Undici = typeof import('undici');

let loading: Promise<Undici> | undefined;

export function loadUndici(): Promise<Undici> {
  return (loading ??= import('undici'));
}
