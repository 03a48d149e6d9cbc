/**
 * Handlers of the account and group requests: users, sessions, groups, join requests (whose
 * owner, and then requester, hear of them as notices).
 *
 * @module
 */

import { idProblem, passwordProblem, quoted } from "../lib/protocol.ts";
import { hashPassword, verifyPassword } from "./auth.ts";
import {
  checkId,
  type Handler,
  listingPage,
  RequestError,
  requireGroup,
  requireOwner,
  requireUser,
} from "./context.ts";
import { GROUPS_SCOPE } from "./reply_cache.ts";
import { SESSION_EXPIRED, sessionId } from "./sessions.ts";

const BAD_CREDENTIALS = "wrong user id or password";

/**
 * What one user may have at once: groups owned and requests to join waiting. They keep one
 * account from growing every listing without bound (7,000 groups once broke list_groups for
 * everyone, past the frame limit).
 */
export const LIMITS = { groupsOwned: 100, pendingRequests: 100 };

/**
 * Groups in one `list_groups` page at most: ids of at most 64 characters make a page of
 * under 100 KiB, whatever the number of groups (users may each own 100).
 */
export const GROUPS_PER_PAGE = 500;

type AccountRequest =
  | "create_user"
  | "login"
  | "resume"
  | "logout"
  | "list_sessions"
  | "end_sessions"
  | "create_group"
  | "join_group"
  | "leave_group"
  | "list_requests"
  | "accept_request"
  | "reject_request"
  | "list_groups";

/** The account and group handlers, by request type. */
export const ACCOUNT_HANDLERS: { [T in AccountRequest]: Handler<T> } = {
  async create_user(context, { user, password }) {
    checkId("user", user);
    const problem = passwordProblem(password);
    if (problem) throw new RequestError("bad_request", problem);
    if (await context.store.passwordHash(user) !== undefined) {
      throw new RequestError("conflict", `user "${user}" already exists`);
    }
    const hash = await context.passwords.run(
      context.connection.address ?? "",
      undefined,
      () => hashPassword(password),
    );
    // Checked again after the slow hash: another connection may have taken the id meanwhile.
    if (!(await context.store.createUser(user, hash))) {
      throw new RequestError("conflict", `user "${user}" already exists`);
    }
    return { user };
  },

  async login(context, { user, password }) {
    if (context.connection.user) {
      throw new RequestError(
        "conflict",
        `already logged in as ${context.connection.user}; logout first`,
      );
    }
    const stored = isValidUserId(user) ? await context.store.passwordHash(user) : undefined;
    const decoy = await context.decoyHash;
    const matches = await context.passwords.run(
      context.connection.address ?? "",
      isValidUserId(user) ? user : undefined,
      () => verifyPassword(stored ?? decoy, password),
    );
    if (stored === undefined || !matches) {
      if (isValidUserId(user)) await context.passwords.recordFailure(user);
      throw new RequestError("unauthenticated", BAD_CREDENTIALS);
    }
    const token = await context.sessions.start(context.connection, user);
    return { user, token, ticket_key: context.tickets.publicKey };
  },

  async resume(context, { token }) {
    // unknown, expired and bound to another certificate are refused alike: no oracle
    const user = await context.sessions.resume(context.connection, token);
    if (user === undefined) throw new RequestError("unauthenticated", SESSION_EXPIRED);
    return { user, ticket_key: context.tickets.publicKey };
  },

  async logout(context) {
    requireUser(context);
    if (context.connection.tokenDigest) await context.sessions.end(context.connection.tokenDigest);
    context.connection.user = undefined;
    context.connection.replayedGroups = undefined;
    context.connection.tokenDigest = undefined;
    // the client stops serving at logout; its shares stay on record for the next login
    await context.presence.releaseConnection(context.connection.id);
    return null;
  },

  async list_sessions(context) {
    const user = requireUser(context);
    return await context.sessions.list(context.connection, user);
  },

  async end_sessions(context, { scope }) {
    const user = requireUser(context);
    if (scope !== "all" && scope !== "others" && !/^[0-9a-f]{8}$/.test(scope)) {
      throw new RequestError(
        "bad_request",
        `invalid session scope ${quoted(scope)}: use all, others or a session id (8 hex digits)`,
      );
    }
    const current = context.connection.tokenDigest;
    if (current && scope === sessionId(current)) {
      throw new RequestError(
        "conflict",
        `session ${scope} is this client's own: use logout to end it`,
      );
    }
    const ended = await context.sessions.endSessions(context.connection, user, scope);
    if (ended === undefined) {
      throw new RequestError("not_found", `you have no session ${quoted(scope)}`);
    }
    return { ended };
  },

  async create_group(context, { group }) {
    const user = requireUser(context);
    checkId("group", group);
    const created = await context.store.createGroup(group, user, LIMITS.groupsOwned);
    if (created === "limit") {
      throw new RequestError(
        "forbidden",
        `you own ${LIMITS.groupsOwned} groups, the most one user may; leave one first`,
      );
    }
    if (!created) throw new RequestError("conflict", `group "${group}" already exists`);
    return { group, owner: user };
  },

  async join_group(context, { group }) {
    const user = requireUser(context);
    const owner = await requireGroup(context, group);
    if (await context.store.isMember(group, user)) {
      throw new RequestError("conflict", `you are already a member of group "${group}"`);
    }
    const filed = await context.store.addJoinRequest(group, user, LIMITS.pendingRequests);
    if (filed === "limit") {
      throw new RequestError(
        "forbidden",
        `you have ${LIMITS.pendingRequests} requests to join waiting, the most one user may`,
      );
    }
    if (!filed) {
      throw new RequestError(
        "conflict",
        `your request to join group "${group}" is already pending`,
      );
    }
    context.events.notifyUser(owner, { push: "join_requested", group, user });
    return { group, status: "pending" };
  },

  async leave_group(context, { group }) {
    const user = requireUser(context);
    await requireGroup(context, group);
    if (!(await context.store.isMember(group, user))) {
      throw new RequestError("conflict", `you are not a member of group "${group}"`);
    }
    const members = new Set(await context.store.members(group));
    // the membership goes first: from then on no request of the user's puts a holding back
    const outcome = await context.store.leaveGroup(group, user);
    // tickets kept for reuse were signed before the leave: peers refuse them from now on
    context.tickets.revoked(user, group);
    // peers serving this user in the group hear of it before the holdings are released (so
    // the user's own serving clients are still found) and before the leaver hears the reply
    context.events.revoke(user, group, members);
    // leaving stops the user's shares there, on every client they use
    await context.presence.releaseUser(user, group);
    return { group, ...outcome };
  },

  async list_requests(context, { group }) {
    await requireOwner(context, group);
    return (await context.store.joinRequests(group)).map((user) => ({ user }));
  },

  async accept_request(context, { group, user }) {
    await requireOwner(context, group);
    checkId("user", user);
    if (!(await context.store.acceptJoinRequest(group, user))) {
      throw new RequestError(
        "not_found",
        `user "${user}" has no pending request to join "${group}"`,
      );
    }
    context.events.notifyUser(user, { push: "join_accepted", group });
    return { group, user };
  },

  async reject_request(context, { group, user }) {
    await requireOwner(context, group);
    checkId("user", user);
    if (!(await context.store.rejectJoinRequest(group, user))) {
      throw new RequestError(
        "not_found",
        `user "${user}" has no pending request to join "${group}"`,
      );
    }
    context.events.notifyUser(user, { push: "join_rejected", group });
    return { group, user };
  },

  async list_groups(context, { after, limit }) {
    requireUser(context);
    const page = listingPage(after, limit, GROUPS_PER_PAGE);
    const load = () => context.store.listGroups(page.after, page.size);
    if (!context.replies) return await load();
    return await context.replies.page(GROUPS_SCOPE, page.key, { load, build: (rows) => rows });
  },
};

function isValidUserId(user: string): boolean {
  return idProblem("user", user) === undefined;
}
