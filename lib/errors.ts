/**
 * The error classes both programs share. Each says who is at fault, which decides what
 * happens next: a `UserError` is printed as `error: <message>` and the shell goes on; a
 * `ProtocolError` closes the one connection that broke the protocol; anything else is a bug,
 * logged with context while the program keeps serving.
 *
 * @module
 */

/** Something the user asked for cannot be done: a bad command, no such group, no access. */
export class UserError extends Error {
  override name = "UserError";
}

/** A peer or client sent bytes that break the protocol; only its connection is closed. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** The tracker cannot be reached right now; the client keeps trying in the background. */
export class TrackerUnavailableError extends UserError {
  override name = "TrackerUnavailableError";
  constructor(message = "the tracker is unreachable; reconnecting in the background") {
    super(message);
  }
}

/** Wrong or missing command-line arguments: usage goes to stderr and the program exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The text of any thrown value, for an `error: ` line or a log entry. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why a listening socket could not be opened, in a few words (`address in use`). */
export function listenErrorText(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  switch (code) {
    case "EADDRINUSE":
      return "address in use";
    case "EADDRNOTAVAIL":
    case "EINVAL":
      return "not an address of this machine";
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)";
    case "ENOTFOUND":
      return "no such host";
  }
  if (error instanceof Deno.errors.AddrInUse) return "address in use";
  if (error instanceof Deno.errors.AddrNotAvailable) return "not an address of this machine";
  return errorMessage(error);
}
