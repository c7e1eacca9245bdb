/** Base of components that show Hearth state: re-render on every state change. */
import { LitElement } from 'lit';
import type { Hearth } from '../state/hearth.js';

export class HearthElement extends LitElement {
  static override properties = { hearth: { attribute: false } };
  declare hearth: Hearth;
  private subscribed?: Hearth;
  private readonly onChange = () => this.requestUpdate();

  override connectedCallback(): void {
    super.connectedCallback();
    this.subscribe();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.subscribed?.removeEventListener('change', this.onChange);
    this.subscribed = undefined;
  }

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has('hearth')) this.subscribe();
  }

  private subscribe(): void {
    if (this.subscribed === this.hearth) return;
    this.subscribed?.removeEventListener('change', this.onChange);
    this.subscribed = this.hearth;
    this.hearth?.addEventListener('change', this.onChange);
  }

  /** Announces a navigation request to the app shell. */
  protected navigate(path: string): void {
    this.dispatchEvent(new CustomEvent('navigate', { detail: path, bubbles: true, composed: true }));
  }

  protected toast(message: string): void {
    this.dispatchEvent(new CustomEvent('toast', { detail: message, bubbles: true, composed: true }));
  }
}
