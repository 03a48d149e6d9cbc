/**
 * A raw TLS connection for tests that speak the wire by hand, as a hostile or homemade client
 * would: it presents a certificate of its own (a fresh identity) and accepts whatever
 * certificate the far end shows.
 */

import { generateIdentity, type Identity } from "../lib/identity.ts";
import { type ByteConn, connectTracker } from "../lib/transport.ts";

/**
 * Connects to 127.0.0.1:`port` over TLS presenting `identity` (default: a new one); checks
 * nothing of the server.
 */
export async function connectRawTls(port: number, identity?: Identity): Promise<ByteConn> {
  identity ??= await generateIdentity("swarmshare test client");
  return await connectTracker({
    hostname: "127.0.0.1",
    port,
    security: { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
    verify: () => {},
  });
}
