/**
 * What reaches clients without their asking: the tracker's pushes. It knows every greeted
 * connection and its writer, and picks who must hear of a revocation: the online holders of
 * files in the group (they may be serving the user) and every logged-in connection of the
 * group's members and of the user. It also sends the notices (join requests, answers, new
 * files) to the logged-in connections they concern, through each connection's `NoticeGate`.
 * What it sends here it also hands to the event bus (event_bus.ts), for the connections of
 * other tracker instances on the same database; `deliver` takes theirs.
 *
 * @module
 */

import type { MoreNoticesPush, NoticePush, Push } from "../lib/protocol.ts";
import type { ConnectionState } from "./context.ts";
import type { FrameWriter } from "./frame_writer.ts";
import { NoticeGate, type NoticeLimits } from "./notices.ts";
import type { PresenceBook } from "./presence.ts";
import { type EventBus, LocalBus, type TrackerEvent } from "./event_bus.ts";
import { RecentRevocations } from "./recent_revocations.ts";

/** Revocations replayed at most to a connection for one hold (one share, one restore batch). */
export const MAX_REPLAYED_PER_CALL = 64;

/** A notice as handlers give it: one event, before any counting. */
export type Notice = Exclude<NoticePush, MoreNoticesPush>;

/** The live connections of a tracker, by id, with the writer each pushes through. */
export class ClientEvents {
  readonly #clients = new Map<
    number,
    { state: ConnectionState; writer: FrameWriter; notices: NoticeGate }
  >();
  readonly #presence: PresenceBook;
  readonly #bus: EventBus;
  readonly #now: () => number;
  readonly #noticeLimits: NoticeLimits;
  /** What a connection that starts holding files in a group is told first. */
  readonly #recent: RecentRevocations;

  /** `bus`: where events go for other instances; default none (`LocalBus`). */
  constructor(
    options: { presence: PresenceBook; bus?: EventBus; now?: () => number; notices?: NoticeLimits },
  ) {
    this.#presence = options.presence;
    this.#bus = options.bus ?? new LocalBus();
    this.#now = options.now ?? Date.now;
    this.#noticeLimits = options.notices ?? {};
    this.#recent = new RecentRevocations({ now: this.#now });
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
    this.#bus.publish({ kind: "notice", users: [user], notice });
    return this.#notify(notice, (who) => who === user);
  }

  /**
   * Tells the logged-in connections of `members` but `except` (whose action it was) that
   * asked for this kind of notice. One pass over the live connections; each gets at most its
   * gate's share, however many notices come. Returns how many it was sent or held for.
   */
  notifyMembers(members: ReadonlySet<string>, except: string, notice: Notice): number {
    this.#bus.publish({ kind: "notice", users: [...members], except, notice });
    return this.#notify(notice, (who) => who !== except && members.has(who));
  }

  /** An event from another instance, for this instance's connections. */
  deliver(event: TrackerEvent): void {
    if (event.kind === "notice") {
      const users = new Set(event.users);
      this.#notify(event.notice, (who) => who !== event.except && users.has(who));
    } else if (event.kind === "revoke") {
      const members = new Set(event.members);
      // a long member list comes in parts, each naming some: the first one records it
      if ((event.part ?? 0) === 0) this.#recorded(event.user, event.group, event.at, members);
      this.#revokeHere(
        { push: "revoke", user: event.user, group: event.group, at: event.at },
        members,
        (event.part ?? 0) === 0,
      );
    }
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
    const push = { push: "revoke" as const, user, group, at: this.#now() };
    this.#recorded(user, group, push.at, members);
    this.#bus.publish({ kind: "revoke", user, group, members: [...members], at: push.at });
    return { push, told: this.#revokeHere(push, members, true) };
  }

  /**
   * Pushes the recent revocations of `groups` to a connection about to hold files there
   * (tracker/recent_revocations.ts): it may have been offline when they happened. Call it
   * before its holdings are handed out. Once per group for the connection's user (a member
   * hears later ones live); at most `MAX_REPLAYED_PER_CALL` pushes a call and only while the
   * connection's push queue is under half full, so a replay never closes it: a group not
   * told whole is told at a later hold.
   */
  replayRevocations(state: ConnectionState, groups: Iterable<string>): void {
    const client = this.#clients.get(state.id);
    if (!client) return;
    let budget = MAX_REPLAYED_PER_CALL;
    for (const group of groups) {
      if (state.replayedGroups?.has(group)) continue;
      const revocations = this.#recent.inGroup(group);
      if (revocations.length > budget) return;
      if (client.writer.queuedPushes + revocations.length > client.writer.maxQueuedPushes / 2) {
        return;
      }
      for (const { user, at } of revocations) {
        if (!client.writer.push({ push: "revoke", user, group, at })) return;
      }
      budget -= revocations.length;
      (state.replayedGroups ??= new Set()).add(group);
    }
  }

  /**
   * Keeps a revocation for replay, unless the leaver was the last member (the group is gone
   * with its files: nobody holds them), and tells the leaver's connections here that the
   * group's replay is owed again should they hold there anew.
   */
  #recorded(user: string, group: string, at: number, members: ReadonlySet<string>): void {
    for (const { state } of this.#clients.values()) {
      if (state.user === user) state.replayedGroups?.delete(group);
    }
    if (members.size > 1 || (members.size === 1 && !members.has(user))) {
      this.#recent.add({ user, group, at });
    }
  }

  #revokeHere(
    push: Extract<Push, { push: "revoke" }>,
    members: ReadonlySet<string>,
    withHolders: boolean,
  ): number {
    const targets = withHolders
      ? new Set(this.#presence.connectionsIn(push.group))
      : new Set<number>();
    for (const [id, { state }] of this.#clients) {
      if (
        state.user !== undefined &&
        ((withHolders && state.user === push.user) || members.has(state.user))
      ) {
        targets.add(id);
      }
    }
    let told = 0;
    for (const id of targets) {
      if (this.#clients.get(id)?.writer.push(push)) told++;
    }
    return told;
  }
}
