/**
 * Small byte-array helpers for code that builds messages from parts (DER, test captures).
 *
 * @module
 */

/** One new array holding `parts` one after another. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
