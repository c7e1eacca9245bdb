/** What /sync keeps in memory for one process: typing notifications, the lazy-loading cache, the tokens issued. */
import { LazyMembersCache } from './lazy-members.js';
import { IssuedTokens } from './long-poll.js';
import type { Notifier } from './notifier.js';
import { TypingStream } from './typing.js';

export class SyncRuntime {
  readonly typing: TypingStream;
  readonly lazyMembers = new LazyMembersCache();
  /** The sync tokens handed out, for a long-poll coming back with one (long-poll.ts). */
  readonly issuedTokens = new IssuedTokens();

  constructor(notifier: Notifier) {
    this.typing = new TypingStream(notifier);
  }

  close(): void {
    this.typing.close();
  }
}
