/**
 * One function per request kind: validate the arguments, check who may do it, act on the
 * store. The connection layer has already parsed the frame into a typed request; everything a
 * handler refuses is a `RequestError` whose message is shown to the user as is.
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";
import {
  type ErrorCode,
  idProblem,
  passwordProblem,
  type Request,
  type ResponseData,
} from "../lib/protocol.ts";
import { hashPassword, newSessionToken, tokenDigest, verifyPassword } from "./auth.ts";
import type { TrackerStore } from "./store.ts";

/** A refused request: its code travels to the client with the message. */
export class RequestError extends UserError {
  override name = "RequestError";
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/** What the tracker knows about one client connection. */
export interface ConnectionState {
  /** The logged-in user, once `login` or `resume` succeeded. */
  user?: string;
  /** Digest of the session token this connection acts under. */
  tokenDigest?: string;
}

/** What every handler may use. */
export interface HandlerContext {
  store: TrackerStore;
  connection: ConnectionState;
  /** A password hash to verify against for unknown users, so both refusals take as long. */
  decoyHash: Promise<string>;
}

type Handler<T extends Request["type"]> = (
  context: HandlerContext,
  request: Extract<Request, { type: T }>,
) => Promise<ResponseData[T]> | ResponseData[T];

type AccountRequest = Exclude<Request["type"], "hello" | "ping">;

const BAD_CREDENTIALS = "wrong user id or password";

function checkId(kind: "user" | "group", id: string): void {
  const problem = idProblem(kind, id);
  if (problem) throw new RequestError("bad_request", problem);
}

function requireUser(context: HandlerContext): string {
  const user = context.connection.user;
  if (!user) {
    throw new RequestError("unauthenticated", "not logged in: use login <user_id> <passwd>");
  }
  return user;
}

function requireGroup(context: HandlerContext, group: string): string {
  checkId("group", group);
  const owner = context.store.groupOwner(group);
  if (owner === undefined) throw new RequestError("not_found", `group "${group}" does not exist`);
  return owner;
}

function requireOwner(context: HandlerContext, group: string): string {
  const user = requireUser(context);
  const owner = requireGroup(context, group);
  if (owner !== user) {
    throw new RequestError(
      "forbidden",
      `only the owner of group "${group}" (${owner}) can do that`,
    );
  }
  return user;
}

function startSession(context: HandlerContext, user: string): string {
  const token = newSessionToken();
  const digest = tokenDigest(token);
  context.store.createSession(digest, user);
  context.connection.user = user;
  context.connection.tokenDigest = digest;
  return token;
}

const HANDLERS: { [T in AccountRequest]: Handler<T> } = {
  async create_user(context, { user, password }) {
    checkId("user", user);
    const problem = passwordProblem(password);
    if (problem) throw new RequestError("bad_request", problem);
    if (context.store.passwordHash(user) !== undefined) {
      throw new RequestError("conflict", `user "${user}" already exists`);
    }
    const hash = await hashPassword(password);
    // Checked again after the slow hash: another connection may have taken the id meanwhile.
    if (!context.store.createUser(user, hash)) {
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
    const stored = isValidUserId(user) ? context.store.passwordHash(user) : undefined;
    const matches = await verifyPassword(stored ?? await context.decoyHash, password);
    if (stored === undefined || !matches) {
      throw new RequestError("unauthenticated", BAD_CREDENTIALS);
    }
    return { user, token: startSession(context, user) };
  },

  resume(context, { token }) {
    const digest = tokenDigest(token);
    const user = context.store.sessionUser(digest);
    if (user === undefined) {
      throw new RequestError("unauthenticated", "the session has expired: log in again");
    }
    context.connection.user = user;
    context.connection.tokenDigest = digest;
    return { user };
  },

  logout(context) {
    requireUser(context);
    if (context.connection.tokenDigest) context.store.deleteSession(context.connection.tokenDigest);
    context.connection.user = undefined;
    context.connection.tokenDigest = undefined;
    return null;
  },

  create_group(context, { group }) {
    const user = requireUser(context);
    checkId("group", group);
    if (!context.store.createGroup(group, user)) {
      throw new RequestError("conflict", `group "${group}" already exists`);
    }
    return { group, owner: user };
  },

  join_group(context, { group }) {
    const user = requireUser(context);
    requireGroup(context, group);
    if (context.store.isMember(group, user)) {
      throw new RequestError("conflict", `you are already a member of group "${group}"`);
    }
    if (!context.store.addJoinRequest(group, user)) {
      throw new RequestError(
        "conflict",
        `your request to join group "${group}" is already pending`,
      );
    }
    return { group, status: "pending" };
  },

  leave_group(context, { group }) {
    const user = requireUser(context);
    requireGroup(context, group);
    if (!context.store.isMember(group, user)) {
      throw new RequestError("conflict", `you are not a member of group "${group}"`);
    }
    return { group, ...context.store.leaveGroup(group, user) };
  },

  list_requests(context, { group }) {
    requireOwner(context, group);
    return context.store.joinRequests(group).map((user) => ({ user }));
  },

  accept_request(context, { group, user }) {
    requireOwner(context, group);
    checkId("user", user);
    if (!context.store.acceptJoinRequest(group, user)) {
      throw new RequestError(
        "not_found",
        `user "${user}" has no pending request to join "${group}"`,
      );
    }
    return { group, user };
  },

  list_groups(context) {
    requireUser(context);
    return context.store.listGroups();
  },
};

function isValidUserId(user: string): boolean {
  return idProblem("user", user) === undefined;
}

/** True when `type` is handled here (every request except the link's own hello and ping). */
export function isAccountRequest(type: Request["type"]): type is AccountRequest {
  return Object.hasOwn(HANDLERS, type);
}

/** Runs the handler of `request`; throws `RequestError` when it is refused. */
export function handleRequest(
  context: HandlerContext,
  request: Extract<Request, { type: AccountRequest }>,
): Promise<unknown> | unknown {
  const handler = HANDLERS[request.type] as Handler<typeof request.type>;
  return handler(context, request as never);
}
