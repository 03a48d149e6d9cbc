/**
 * What the tracker's log says about a request once it is answered: accounts and logins, group
 * changes, shares, and download tickets issued. Built from chosen fields only, so a password,
 * a session token or a ticket's bytes can never reach the log, whatever a request carries;
 * names are quoted (lib/protocol.ts) and the logger escapes the rest (lib/log.ts).
 *
 * @module
 */

import type { LogLevel } from "../lib/log.ts";
import { quoted, type RequestFrame } from "../lib/protocol.ts";

/** How a request ended: answered, or refused with the message the client got. */
export type RequestOutcome =
  | { ok: true; data?: unknown }
  | { ok: false; code: string; message: string };

/** One log entry about a request. */
export interface ActivityEntry {
  level: LogLevel;
  message: string;
  /**
   * True for what anyone may cause without an account (creating one, failed logins and
   * resumes): the tracker gives these the budget of strangers, not its members'.
   */
  byStranger: boolean;
}

/**
 * The log entry for `request`, answered for `user` (the user logged in after it, if any) on
 * connection `connection` from `remote`; undefined for a request not worth a line (pings,
 * lists, a member's routine refusals at info go to debug).
 */
export function describeActivity(
  request: RequestFrame,
  who: { user?: string; connection: number; remote: string },
  outcome: RequestOutcome,
): ActivityEntry | undefined {
  const user = who.user ?? "(not logged in)";
  const on = `connection ${who.connection} from ${who.remote}`;
  const member = (message: string): ActivityEntry => ({
    level: "info",
    message,
    byStranger: false,
  });
  if (!outcome.ok) {
    const refused = `${request.type} refused (${outcome.code}: ${outcome.message})`;
    switch (request.type) {
      case "login":
        return {
          level: "info",
          message: `login as ${quoted(request.user)} ${refusedOn(outcome, on)}`,
          byStranger: true,
        };
      case "create_user":
        return {
          level: "info",
          message: `create_user ${quoted(request.user)} ${refusedOn(outcome, on)}`,
          byStranger: true,
        };
      case "resume":
        return {
          level: "info",
          message: `session resume ${refusedOn(outcome, on)}`,
          byStranger: true,
        };
      default:
        return {
          level: "debug",
          message: `${user}: ${refused}`,
          byStranger: who.user === undefined,
        };
    }
  }
  switch (request.type) {
    case "create_user":
      return {
        level: "info",
        message: `user ${quoted(request.user)} created on ${on}`,
        byStranger: true,
      };
    case "login":
      return member(`${user} logged in on ${on}`);
    case "resume":
      return member(`${user} resumed a session on ${on}`);
    case "logout":
      return member(`${user} logged out on ${on}`);
    case "end_sessions":
      return member(`${user} ended sessions (${quoted(request.scope)})`);
    case "create_group":
      return member(`${user} created group ${quoted(request.group)}`);
    case "join_group":
      return member(`${user} asked to join group ${quoted(request.group)}`);
    case "leave_group":
      return member(`${user} left group ${quoted(request.group)}`);
    case "accept_request":
      return member(`${user} let ${quoted(request.user)} into group ${quoted(request.group)}`);
    case "share_file":
      return member(
        `${user} shares ${quoted(request.name)} in group ${quoted(request.group)} ` +
          `(${request.size} bytes, sha1 ${request.sha1})`,
      );
    case "stop_share":
      if ((outcome.data as { kept?: unknown } | null | undefined)?.kept === true) {
        return member(
          `${user}'s client on ${on} cannot serve ${quoted(request.name)} in group ` +
            `${quoted(request.group)}; another client of ${user} still shares it`,
        );
      }
      return member(
        `${user} stopped sharing ${quoted(request.name)} in group ${quoted(request.group)}`,
      );
    case "locate_file":
      return member(
        `ticket issued to ${user} for ${quoted(request.name)} in group ${quoted(request.group)}`,
      );
    case "find_peers":
      return member(
        `ticket issued to ${user} for ${request.info_hash.slice(0, 12)}... in group ` +
          quoted(request.group),
      );
    case "ping":
    case "hello":
      return undefined;
    default:
      return { level: "debug", message: `${user}: ${request.type}`, byStranger: false };
  }
}

function refusedOn(outcome: { code: string; message: string }, on: string): string {
  return `refused on ${on}: ${outcome.message} (${outcome.code})`;
}
