/**
 * The bound on notices (join requests, answers, new files) to one connection. Each event
 * costs one push per online connection it concerns, but a user who uploads hundreds of files
 * or a crowd asking to join at once must not flood a member's screen, nor fill the writer's
 * push queue (which closes the connection when full: a revocation must never wait behind
 * notices). So a connection gets at most `burst` notices per `windowMs`; past that, and
 * while its writer is backed up, notices are counted by kind and group instead, and when
 * the window ends one `more_notices` per kind and group tells how many there were ("and 37
 * more new files in group films"). At most `maxHeldGroups` groups are counted apart; the
 * rest are counted per kind alone.
 *
 * @module
 */

import type { MoreNoticesPush, NoticeKind, NoticePush, Push } from "../lib/protocol.ts";

/** Notices a connection gets one by one within a window. */
export const NOTICE_BURST = 5;
/** The window the burst is counted in; held notices are summed up when it ends. */
export const NOTICE_WINDOW_MS = 3_000;
/**
 * Pushes a writer may have waiting before notices are held rather than queued: well below
 * the writer's own limit (256), which closes the connection.
 */
export const NOTICE_QUEUE_ROOM = 32;
/** Groups whose held notices are counted apart, per connection; the rest per kind only. */
export const MAX_HELD_GROUPS = 8;

/** What a gate needs of the connection's writer. */
export interface PushSink {
  /** Queues a push; false when the connection is gone. */
  push(push: Push): boolean;
  /** Pushes queued and not yet written. */
  readonly queuedPushes: number;
}

/** How a gate bounds notices. Defaults: the constants of this module. */
export interface NoticeLimits {
  burst?: number;
  windowMs?: number;
  queueRoom?: number;
  maxHeldGroups?: number;
  now?: () => number;
}

/**
 * One connection's notices, bounded.
 *
 * @example
 * ```ts
 * const gate = new NoticeGate(writer, { burst: 2 });
 * gate.offer({ push: "join_accepted", group: "films" }); // "sent"
 * gate.close(); // when the connection goes
 * ```
 */
export class NoticeGate {
  readonly #sink: PushSink;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #queueRoom: number;
  readonly #maxHeldGroups: number;
  readonly #now: () => number;
  /** Whether the client takes `more_notices`; if not, held notices are dropped unsaid. */
  readonly #summaries: boolean;
  #windowStart = -Infinity;
  #sent = 0;
  /** Held notices by kind and group (group "" for the ones counted per kind alone). */
  readonly #held = new Map<string, { notice: NoticeKind; group: string; count: number }>();
  #heldGroups = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;

  constructor(sink: PushSink, options: NoticeLimits & { summaries?: boolean } = {}) {
    this.#sink = sink;
    this.#burst = options.burst ?? NOTICE_BURST;
    this.#windowMs = options.windowMs ?? NOTICE_WINDOW_MS;
    this.#queueRoom = options.queueRoom ?? NOTICE_QUEUE_ROOM;
    this.#maxHeldGroups = options.maxHeldGroups ?? MAX_HELD_GROUPS;
    this.#now = options.now ?? Date.now;
    this.#summaries = options.summaries ?? true;
  }

  /** Sends a notice now, or holds it to be counted when the window ends. */
  offer(notice: Exclude<NoticePush, MoreNoticesPush>): "sent" | "held" | "dropped" {
    if (this.#closed) return "dropped";
    const now = this.#now();
    if (this.#timer === undefined && now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#sent = 0;
    }
    if (this.#sent < this.#burst && this.#sink.queuedPushes < this.#queueRoom) {
      this.#sent++;
      return this.#sink.push(notice) ? "sent" : "dropped";
    }
    this.#hold(notice.push, notice.group);
    this.#timer ??= setTimeout(
      () => this.#flush(),
      Math.max(0, this.#windowStart + this.#windowMs - now),
    );
    return "held";
  }

  /** Forgets what is held (the connection went away). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held.clear();
  }

  #hold(notice: NoticeKind, group: string): void {
    let key = `${notice}\n${group}`;
    if (!this.#held.has(key)) {
      if (this.#heldGroups < this.#maxHeldGroups) this.#heldGroups++;
      else key = `${notice}\n`;
    }
    const entry = this.#held.get(key);
    if (entry) entry.count++;
    else this.#held.set(key, { notice, group: key.endsWith("\n") ? "" : group, count: 1 });
  }

  /** The window ended: one `more_notices` per kind and group held, and a new window. */
  #flush(): void {
    this.#timer = undefined;
    this.#windowStart = this.#now();
    this.#sent = 0;
    if (this.#sink.queuedPushes >= this.#queueRoom) {
      // still not reading: keep counting and try again when the next window ends
      this.#timer = setTimeout(() => this.#flush(), this.#windowMs);
      return;
    }
    const held = [...this.#held.values()];
    this.#held.clear();
    this.#heldGroups = 0;
    if (!this.#summaries) return;
    for (const { notice, group, count } of held) {
      this.#sink.push({ push: "more_notices", notice, count, ...group ? { group } : {} });
    }
    // the summaries take their share of the new window's burst
    this.#sent = Math.min(this.#burst, held.length);
  }
}
