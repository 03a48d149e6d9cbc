/**
 * Whether the tracker at the other end of the link is the one this client trusts, decided
 * from its certificate's SHA-256 fingerprint the way SSH decides on host keys: the fingerprint
 * given with `--tracker-fingerprint`, else the one pinned in the state directory's
 * known_trackers file, else (first contact) trusted and pinned there. A changed fingerprint
 * is refused, never re-trusted on its own. A tracker dialled by host name whose certificate
 * chain a trusted certificate authority vouches for, for that name (an operator's own
 * certificate, `--tls-cert`), is accepted as a browser would, without a pin: its
 * certificate changes at every renewal. Its address is remembered instead (the state
 * directory's authority_trackers file), and from then on a certificate there that no
 * authority vouches for is refused, pinned or not: trusting it on first use would let
 * whoever sits on the path downgrade an authority-verified tracker to one of their own. To
 * go back to a self-signed certificate there, the user removes that line (or starts with
 * `--tracker-fingerprint`).
 *
 * A client given several instances of one deployment (`--tracker`) checks each address on
 * its own, with one more rule: an address with no pin yet that presents a fingerprint
 * pinned for another tracker of the client's list is the same deployment (its instances
 * share one identity) and is pinned too, said as such rather than as a first use. So:
 * `--tracker-fingerprint` applies to every address; a pinned address must present its pin
 * (a mismatch is refused, even when it presents another listed tracker's fingerprint); an
 * unpinned one is trusted, as the same deployment or else on first use, and pinned, unless
 * an authority vouched for the tracker at that address before.
 *
 * @module
 */

import { formatFingerprint } from "../lib/identity.ts";
import { IdentityError } from "../lib/transport.ts";
import { AUTHORITY_TRACKERS_FILE, type StateDir } from "./state_dir.ts";

/** What the verifier needs: whose tracker, where pins live, and whom to tell of a new pin. */
export interface TrackerTrustOptions {
  /**
   * Every tracker the client may use, `host:port` as known_trackers keys them, the seed
   * first: whose pins vouch for an instance of the same deployment.
   */
  addresses: readonly string[];
  stateDir: StateDir;
  /** From `--tracker-fingerprint`: the only fingerprint accepted at any address. */
  expected?: string;
  /**
   * Told when a tracker is trusted and pinned: on first use, or (`sameAs`) because it
   * presents the fingerprint pinned for that other tracker of the list.
   */
  onTrusted(trusted: { address: string; fingerprint: string; file: string; sameAs?: string }): void;
}

/**
 * A check for `connectTracker` of the tracker at `address` (one of `options.addresses`):
 * resolves to accept it, throws `IdentityError` not to.
 */
export function trackerVerifier(
  options: TrackerTrustOptions,
): (fingerprint: string, verified: { byAuthority: boolean }, address: string) => Promise<void> {
  const file = `${options.stateDir.path}/known_trackers`;
  const authorityFile = `${options.stateDir.path}/${AUTHORITY_TRACKERS_FILE}`;
  return async (fingerprint, verified, address) => {
    const presented = formatFingerprint(fingerprint);
    if (options.expected === undefined && verified.byAuthority) {
      await options.stateDir.rememberAuthorityTracker(address);
      return;
    }
    if (options.expected !== undefined) {
      if (fingerprint === options.expected) return;
      throw new IdentityError(
        `the tracker at ${address} presented fingerprint ${presented}, not ` +
          `${formatFingerprint(options.expected)} as given with --tracker-fingerprint: ` +
          `someone may be intercepting the connection; nothing was sent to it`,
      );
    }
    if (await options.stateDir.wasVouchedByAuthority(address)) {
      throw new IdentityError(
        `the tracker at ${address} was vouched for by a certificate authority before, and ` +
          `this certificate (fingerprint ${presented}) is not: someone may be intercepting ` +
          `the connection. Nothing was sent to it. If the tracker's operator confirms they ` +
          `moved to a self-signed certificate with this fingerprint, delete the line ` +
          `${address} from ${authorityFile} or start the client with --tracker-fingerprint`,
      );
    }
    const pinned = await options.stateDir.knownTracker(address);
    if (pinned === fingerprint) return;
    if (pinned !== undefined) {
      throw new IdentityError(
        `the tracker at ${address} presented fingerprint ${presented}, but ` +
          `${formatFingerprint(pinned)} is pinned for it in ${file}: someone may be ` +
          `intercepting the connection, or the tracker's certificate was replaced. Nothing was ` +
          `sent to it. If the tracker's operator confirms the new fingerprint, delete that ` +
          `line from ${file} or start the client with --tracker-fingerprint`,
      );
    }
    // the same deployment: another tracker of the list is pinned to this very fingerprint
    let sameAs: string | undefined;
    for (const other of options.addresses) {
      if (other === address) continue;
      if (await options.stateDir.knownTracker(other) === fingerprint) {
        sameAs = other;
        break;
      }
    }
    await options.stateDir.rememberTracker(address, fingerprint);
    options.onTrusted({ address, fingerprint, file, ...sameAs ? { sameAs } : {} });
  };
}
