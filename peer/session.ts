/**
 * The user's side of the tracker conversation: who is logged in on this client, the session
 * token that lets the link resume after a tracker restart, and one method per account or
 * group command. The tracker decides every access question; this class only keeps state.
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";
import type { ResponseData } from "../lib/protocol.ts";
import { TrackerLink, type TrackerLinkOptions, TrackerRefusal } from "./tracker_link.ts";

/** Something the session announces on its own, outside any command. */
export type SessionEvent =
  | { event: "tracker_disconnected"; reason: string }
  | { event: "tracker_reconnected"; user: string | null }
  | { event: "session_expired"; user: string };

/** How the session reaches the tracker. */
export type SessionOptions = Omit<TrackerLinkOptions, "onConnected" | "onStatus"> & {
  onEvent: (event: SessionEvent) => void;
};

/** The logged-in state of one client, surviving tracker restarts. */
export class ClientSession {
  readonly #link: TrackerLink;
  readonly #onEvent: (event: SessionEvent) => void;
  #login?: { user: string; token: string };

  constructor(options: SessionOptions) {
    const { onEvent, ...linkOptions } = options;
    this.#onEvent = onEvent;
    this.#link = new TrackerLink({
      ...linkOptions,
      onConnected: (link) => this.#resume(link),
      onStatus: (status) => {
        if (status.state === "down") {
          this.#onEvent({ event: "tracker_disconnected", reason: status.reason });
        } else if (status.reconnected) {
          this.#onEvent({ event: "tracker_reconnected", user: this.user ?? null });
        }
      },
    });
  }

  /** Starts connecting to the tracker in the background. */
  start(): void {
    this.#link.start();
  }

  /** The logged-in user, if any. */
  get user(): string | undefined {
    return this.#login?.user;
  }

  /** Ends the session on the tracker (best effort) and closes the link. */
  async close(): Promise<void> {
    if (this.#login && this.#link.isUp) await this.logout().catch(() => {});
    await this.#link.close();
  }

  async #resume(link: TrackerLink): Promise<void> {
    const login = this.#login;
    if (!login) return;
    try {
      await link.sendDuringSetup("resume", { token: login.token });
    } catch (error) {
      if (!(error instanceof TrackerRefusal)) throw error;
      this.#login = undefined;
      this.#onEvent({ event: "session_expired", user: login.user });
    }
  }

  createUser(user: string, password: string): Promise<ResponseData["create_user"]> {
    return this.#link.request("create_user", { user, password });
  }

  async login(user: string, password: string): Promise<{ user: string }> {
    if (this.#login) throw new UserError(`already logged in as ${this.#login.user}; logout first`);
    const { token } = await this.#link.request("login", { user, password });
    this.#login = { user, token };
    return { user };
  }

  async logout(): Promise<null> {
    await this.#link.request("logout", {});
    this.#login = undefined;
    return null;
  }

  createGroup(group: string): Promise<ResponseData["create_group"]> {
    return this.#link.request("create_group", { group });
  }

  joinGroup(group: string): Promise<ResponseData["join_group"]> {
    return this.#link.request("join_group", { group });
  }

  leaveGroup(group: string): Promise<ResponseData["leave_group"]> {
    return this.#link.request("leave_group", { group });
  }

  listRequests(group: string): Promise<ResponseData["list_requests"]> {
    return this.#link.request("list_requests", { group });
  }

  acceptRequest(group: string, user: string): Promise<ResponseData["accept_request"]> {
    return this.#link.request("accept_request", { group, user });
  }

  listGroups(): Promise<ResponseData["list_groups"]> {
    return this.#link.request("list_groups", {});
  }
}
