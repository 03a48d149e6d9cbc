/**
 * A running SHA-1 on its own thread, for hashing a file twice at once (every piece, and the
 * whole): the caller transfers each chunk in, in order, and gets the buffer back once it is
 * hashed; `digest` ends it. Messages in: `{chunk, length}` or `{digest: true}`; out: the
 * returned `{chunk}` or `{sha1}`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";

const whole = createHash("sha1");

self.onmessage = (event: MessageEvent<{ chunk?: ArrayBuffer; length?: number; digest?: true }>) => {
  const { chunk, length, digest } = event.data;
  if (digest) {
    self.postMessage({ sha1: whole.digest("hex") });
    self.close();
    return;
  }
  whole.update(new Uint8Array(chunk!, 0, length));
  self.postMessage({ chunk }, [chunk!]);
};
