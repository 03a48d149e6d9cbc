/**
 * Small socket helpers both programs use: writing a whole buffer, closing without caring
 * whether the other side already did, and telling a vanished peer from a real fault.
 *
 * @module
 */

/** Writes every byte of `bytes`; `Deno.Conn.write` may write fewer in one call. */
export async function writeAll(
  writer: { write(bytes: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await writer.write(bytes.subarray(written));
  }
}

/** Closes a resource that may already be closed. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed: nothing left to release
  }
}

/** True for the errors a socket raises when the other side went away or we closed it. */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof;
}
