/**
 * Small I/O helpers both programs use: writing a whole buffer, closing without caring
 * whether the other side already did, telling a vanished peer from a real fault, and reading
 * a small file without trusting its size.
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

/** A file was larger than its reader's bound. */
export class FileTooLargeError extends Error {
  override name = "FileTooLargeError";
}

/**
 * The whole of a small file, reading at most `limitBytes` of it: a file that turns out longer
 * (whatever its stat said) throws `FileTooLargeError`. Other errors are `Deno.open`'s.
 */
export async function readFileBounded(path: string, limitBytes: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(limitBytes + 1);
  let length = 0;
  while (length < buffer.length) {
    const count = await file.read(buffer.subarray(length));
    if (count === null) break;
    length += count;
  }
  if (length > limitBytes) {
    throw new FileTooLargeError(`${path} is larger than ${limitBytes} bytes`);
  }
  return buffer.slice(0, length);
}
