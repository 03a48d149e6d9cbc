/**
 * What every request handler works with: the refusal type, the connection's state, the
 * shared services, and the access checks (logged in, group exists, member, owner) that
 * handlers compose. The tracker decides every access question here, never the client.
 *
 * @module
 */

import {
  idProblem,
  type PeerEndpoint,
  Refusal as RequestError,
  type Request,
  type ResponseData,
} from "../lib/protocol.ts";
import type { AddressCheck } from "./address_checks.ts";
import type { TicketSigner } from "./auth.ts";
import type { ClientEvents } from "./events.ts";
import type { InfoUploads } from "./info_uploads.ts";
import type { PasswordWork } from "./password_work.ts";
import type { ReplyCache } from "./reply_cache.ts";
import type { PresenceBook } from "./presence.ts";
import type { Sessions } from "./sessions.ts";
import type { TrackerStore } from "./store.ts";

/** A refused request: its code travels to the client with the message. */
export { RequestError };

/** What the tracker knows about one client connection. */
export interface ConnectionState {
  /** Unique per connection while the tracker runs. */
  id: number;
  /** Where the client serves pieces and the certificate it serves with, from its hello. */
  peer?: PeerEndpoint;
  /** Whether `peer` leads to this client; started at the first login on the connection. */
  addressCheck?: AddressCheck;
  /** Push kinds beyond `revoke` the client asked for in its hello. */
  pushes?: ReadonlySet<string>;
  /** The address the connection comes from: whose turn and limits its password work takes. */
  address?: string;
  /** The tracker's end of the connection (one of its own addresses). */
  localAddress?: string;
  /** True once the connection is gone (late outcomes of its work are dropped). */
  closed?: boolean;
  /** SHA-256 of the client certificate this connection presented (TLS); undefined on a plaintext link. */
  fingerprint?: string;
  /** The logged-in user, once `login` or `resume` succeeded. */
  user?: string;
  /** Digest of the session token this connection acts under. */
  tokenDigest?: string;
  /** When this connection last wrote its session's last use (ms), to write it once a minute. */
  sessionSeenAt?: number;
  /**
   * The groups whose recent revocations this connection was told for its user
   * (`ClientEvents.replayRevocations`): from then on, a member, it hears them live. Cleared
   * at every login or logout, and a group dropped when its user leaves it.
   */
  replayedGroups?: Set<string>;
}

/** What every handler may use. */
export interface HandlerContext {
  store: TrackerStore;
  connection: ConnectionState;
  /** A password hash to verify against for unknown users, so both refusals take as long. */
  decoyHash: Promise<string>;
  /** Password hashing, bounded and shared fairly between addresses. */
  passwords: PasswordWork;
  /** Who is online holding which file. */
  presence: PresenceBook;
  /** Signs download tickets; its public half goes to clients at login. */
  tickets: TicketSigner;
  /** Login sessions and the connections acting under them. */
  sessions: Sessions;
  /** Pushes to other connections (revocations). */
  events: ClientEvents;
  /** Listing pages kept between writes; absent (unit tests), every page is read afresh. */
  replies?: ReplyCache;
  /** Info dictionaries being shared in pages (`put_info`), within one budget. */
  infoUploads: InfoUploads;
  /**
   * The check of this connection's serving address (undefined before a login or without an
   * address): started at the first call, registered with `presence` once verified. Absent
   * (unit tests), no holder of this connection is ever handed out.
   */
  addressCheck?: () => AddressCheck | undefined;
}

/** A handler of one request type. */
export type Handler<T extends Request["type"]> = (
  context: HandlerContext,
  request: Extract<Request, { type: T }>,
) => Promise<ResponseData[T]> | ResponseData[T];

/** Requests answered by handlers (hello and ping belong to the connection itself). */
export type HandledRequest = Exclude<Request["type"], "hello" | "ping">;

export function checkId(kind: "user" | "group", id: string): void {
  const problem = idProblem(kind, id);
  if (problem) throw new RequestError("bad_request", problem);
}

/**
 * The longest `after` a listing is asked with: longer than any group id (64) or shared name
 * (238 bytes). Clients send the last entry they got; a longer text is refused rather than
 * kept as a page's key.
 */
export const MAX_AFTER_LENGTH = 256;

/** A listing page asked for: where it starts, how many entries, and its key among kept pages. */
export interface ListingPage {
  after: string;
  size: number;
  key: string;
}

/**
 * The page a listing request asks for: after `after` (from the start when absent), of the
 * size the client asked (`limit`, optional) but at most the tracker's `most`. A client
 * showing pages on a screen asks for fewer than the tracker's page; none gets more. The key
 * holds the size, then `after` (any text: the size, digits, ends at the first line break).
 */
export function listingPage(
  after: string | undefined,
  limit: number | undefined,
  most: number,
): ListingPage {
  if (after !== undefined && after.length > MAX_AFTER_LENGTH) {
    throw new RequestError("bad_request", `after is longer than ${MAX_AFTER_LENGTH} characters`);
  }
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new RequestError("bad_request", "limit must be a whole number of at least 1");
  }
  const size = Math.min(limit ?? most, most);
  return { after: after ?? "", size, key: `${size}\n${after ?? ""}` };
}

export function requireUser(context: HandlerContext): string {
  const user = context.connection.user;
  if (!user) {
    throw new RequestError("unauthenticated", "not logged in: use login <user_id> <passwd>");
  }
  return user;
}

export async function requireGroup(context: HandlerContext, group: string): Promise<string> {
  checkId("group", group);
  const owner = await context.store.groupOwner(group);
  if (owner === undefined) throw new RequestError("not_found", `group "${group}" does not exist`);
  return owner;
}

export async function requireOwner(context: HandlerContext, group: string): Promise<string> {
  const user = requireUser(context);
  const owner = await requireGroup(context, group);
  if (owner !== user) {
    throw new RequestError(
      "forbidden",
      `only the owner of group "${group}" (${owner}) can do that`,
    );
  }
  return user;
}

/** The logged-in user, who must be a member of the (existing) group. */
export async function requireMember(context: HandlerContext, group: string): Promise<string> {
  const user = requireUser(context);
  await requireGroup(context, group);
  if (!(await context.store.isMember(group, user))) {
    throw new RequestError("forbidden", `you are not a member of group "${group}"`);
  }
  return user;
}
