/**
 * What reaches clients without their asking: the tracker's pushes. It knows every greeted
 * connection and its writer, and picks who must hear of a revocation: the online holders of
 * files in the group (they may be serving the user) and every logged-in connection of the
 * group's members and of the user.
 *
 * @module
 */

import type { Push } from "../lib/protocol.ts";
import type { ConnectionState } from "./context.ts";
import type { FrameWriter } from "./frame_writer.ts";
import type { Presence } from "./presence.ts";

/** The live connections of a tracker, by id, with the writer each pushes through. */
export class ClientEvents {
  readonly #clients = new Map<number, { state: ConnectionState; writer: FrameWriter }>();
  readonly #presence: Presence;
  readonly #now: () => number;

  constructor(options: { presence: Presence; now?: () => number }) {
    this.#presence = options.presence;
    this.#now = options.now ?? Date.now;
  }

  /** A connection that may be pushed to (after its hello). */
  register(state: ConnectionState, writer: FrameWriter): void {
    this.#clients.set(state.id, { state, writer });
  }

  /** A connection that went away. */
  unregister(state: ConnectionState): void {
    this.#clients.delete(state.id);
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
