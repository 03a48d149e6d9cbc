/**
 * What reaches clients without their asking: the tracker's pushes. It knows every greeted
 * connection and its writer, and picks who must hear of a revocation: the online holders of
 * files in the group (they may be serving the user) and every logged-in connection of the
 * group's members and of the user. It also sends the notices (join requests, answers, new
 * files) to the logged-in connections they concern, through each connection's `NoticeGate`.
 *
 * @module
 */

import type { MoreNoticesPush, NoticePush, Push } from "../lib/protocol.ts";
import type { ConnectionState } from "./context.ts";
import type { FrameWriter } from "./frame_writer.ts";
import { NoticeGate, type NoticeLimits } from "./notices.ts";
import type { Presence } from "./presence.ts";

/** A notice as handlers give it: one event, before any counting. */
export type Notice = Exclude<NoticePush, MoreNoticesPush>;

/** The live connections of a tracker, by id, with the writer each pushes through. */
export class ClientEvents {
  readonly #clients = new Map<
    number,
    { state: ConnectionState; writer: FrameWriter; notices: NoticeGate }
  >();
  readonly #presence: Presence;
  readonly #now: () => number;
  readonly #noticeLimits: NoticeLimits;

  constructor(options: { presence: Presence; now?: () => number; notices?: NoticeLimits }) {
    this.#presence = options.presence;
    this.#now = options.now ?? Date.now;
    this.#noticeLimits = options.notices ?? {};
  }

  /** A connection that may be pushed to (after its hello). */
  register(state: ConnectionState, writer: FrameWriter): void {
    const notices = new NoticeGate(writer, {
      ...this.#noticeLimits,
      summaries: state.pushes?.has("more_notices") ?? false,
    });
    this.#clients.set(state.id, { state, writer, notices });
  }

  /** A connection that went away. */
  unregister(state: ConnectionState): void {
    this.#clients.get(state.id)?.notices.close();
    this.#clients.delete(state.id);
  }

  /**
   * Tells every logged-in connection of `user` that asked for this kind of notice. Returns
   * how many connections it was sent or held for.
   */
  notifyUser(user: string, notice: Notice): number {
    return this.#notify(notice, (who) => who === user);
  }

  /**
   * Tells the logged-in connections of `members` but `except` (whose action it was) that
   * asked for this kind of notice. One pass over the live connections; each gets at most its
   * gate's share, however many notices come. Returns how many it was sent or held for.
   */
  notifyMembers(members: ReadonlySet<string>, except: string, notice: Notice): number {
    return this.#notify(notice, (who) => who !== except && members.has(who));
  }

  #notify(notice: Notice, concerns: (user: string) => boolean): number {
    let told = 0;
    for (const { state, notices } of this.#clients.values()) {
      if (state.user === undefined || !concerns(state.user)) continue;
      if (!state.pushes?.has(notice.push)) continue;
      if (notices.offer(notice) !== "dropped") told++;
    }
    return told;
  }

  /** The state of a live connection, by id. */
  stateOf(connectionId: number): ConnectionState | undefined {
    return this.#clients.get(connectionId)?.state;
  }

  /**
   * Pushes to one connection, if it asked for pushes of this kind in its hello (every client
   * takes `revoke`). True when queued.
   */
  pushTo(connectionId: number, push: Push): boolean {
    const client = this.#clients.get(connectionId);
    if (!client) return false;
    if (push.push !== "revoke" && !client.state.pushes?.has(push.push)) return false;
    return client.writer.push(push);
  }

  /**
   * Tells everyone concerned that `user` is out of `group` from now. Call it before the
   * holdings of `user` are released, with the members as they were before the leave.
   * Returns the push sent and how many connections it was queued for.
   */
  revoke(user: string, group: string, members: ReadonlySet<string>): {
    push: Push;
    told: number;
  } {
    const push: Push = { push: "revoke", user, group, at: this.#now() };
    const targets = new Set(this.#presence.connectionsIn(group));
    for (const [id, { state }] of this.#clients) {
      if (state.user !== undefined && (state.user === user || members.has(state.user))) {
        targets.add(id);
      }
    }
    let told = 0;
    for (const id of targets) {
      if (this.#clients.get(id)?.writer.push(push)) told++;
    }
    return { push, told };
  }
}
