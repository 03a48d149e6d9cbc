/**
 * A countdown that is restarted and stopped far more often than it runs out: a connection's
 * idle timeout (restarted at every request) and a write's timeout (started and stopped at
 * every reply). A timer made and cleared each time cost the tracker ~5% of its main thread
 * at 5,000 busy links; this one keeps at most one timer armed, and when it fires early (the
 * countdown was restarted meanwhile) arms it again for what is left. The timer does not keep
 * the process alive (what it guards, a socket, does).
 *
 * @module
 */

/** Runs `expire` once `ms` have passed since the last `start` with no `stop` after it. */
export class Deadline {
  readonly #ms: number;
  readonly #expire: () => void;
  readonly #now: () => number;
  #timer?: ReturnType<typeof setTimeout>;
  /** When it runs out (ms, `now`'s clock); Infinity while stopped. */
  #due = Infinity;

  constructor(ms: number, expire: () => void, now: () => number = () => performance.now()) {
    this.#ms = ms;
    this.#expire = expire;
    this.#now = now;
  }

  /** True while counting down. */
  get running(): boolean {
    return this.#due !== Infinity;
  }

  /** (Re)starts the countdown from now. */
  start(): void {
    this.#due = this.#now() + this.#ms;
    if (this.#timer === undefined) this.#arm(this.#ms);
  }

  /** Stops the countdown; a later `start` begins a new one. */
  stop(): void {
    this.#due = Infinity;
  }

  /** Stops the countdown and lets its timer go. */
  clear(): void {
    this.#due = Infinity;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#check(), delayMs);
    Deno.unrefTimer(this.#timer);
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#due === Infinity) return;
    const left = this.#due - this.#now();
    if (left > 0) {
      this.#arm(left);
      return;
    }
    this.#due = Infinity;
    this.#expire();
  }
}
