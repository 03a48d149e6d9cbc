/**
 * Whether the tracker at the other end of the link is the one this client trusts, decided
 * from its certificate's SHA-256 fingerprint the way SSH decides on host keys: the fingerprint
 * given with `--tracker-fingerprint`, else the one pinned in the state directory's
 * known_trackers file, else (first contact) trusted and pinned there. A changed fingerprint
 * is refused, never re-trusted on its own. A tracker dialled by host name whose certificate
 * chain a trusted certificate authority vouches for, for that name (an operator's own
 * certificate, `--tls-cert`), is accepted as a browser would, without a pin: its
 * certificate changes at every renewal.
 *
 * @module
 */

import { formatFingerprint } from "../lib/identity.ts";
import { IdentityError } from "../lib/transport.ts";
import type { StateDir } from "./state_dir.ts";

/** What the verifier needs: whose tracker, where pins live, and whom to tell of a new pin. */
export interface TrackerTrustOptions {
  /** `host:port` as the client dials it: the key of known_trackers. */
  address: string;
  stateDir: StateDir;
  /** From `--tracker-fingerprint`: the only fingerprint accepted, whatever is pinned. */
  expected?: string;
  /** Told when a tracker is trusted on first use. */
  onTrusted(fingerprint: string, file: string): void;
}

/** A check for `connectTracker`: resolves to accept the tracker, throws `IdentityError` not to. */
export function trackerVerifier(
  options: TrackerTrustOptions,
): (fingerprint: string, verified: { byAuthority: boolean }) => Promise<void> {
  const file = `${options.stateDir.path}/known_trackers`;
  return async (fingerprint, verified) => {
    const presented = formatFingerprint(fingerprint);
    if (options.expected === undefined && verified.byAuthority) return;
    if (options.expected !== undefined) {
      if (fingerprint === options.expected) return;
      throw new IdentityError(
        `the tracker at ${options.address} presented fingerprint ${presented}, not ` +
          `${formatFingerprint(options.expected)} as given with --tracker-fingerprint: ` +
          `someone may be intercepting the connection; nothing was sent to it`,
      );
    }
    const pinned = await options.stateDir.knownTracker(options.address);
    if (pinned === fingerprint) return;
    if (pinned !== undefined) {
      throw new IdentityError(
        `the tracker at ${options.address} presented fingerprint ${presented}, but ` +
          `${formatFingerprint(pinned)} is pinned for it in ${file}: someone may be ` +
          `intercepting the connection, or the tracker's certificate was replaced. Nothing was ` +
          `sent to it. If the tracker's operator confirms the new fingerprint, delete that ` +
          `line from ${file} or start the client with --tracker-fingerprint`,
      );
    }
    await options.stateDir.rememberTracker(options.address, fingerprint);
    options.onTrusted(fingerprint, file);
  };
}
