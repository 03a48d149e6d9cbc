/**
 * A file's info dictionary between this client and the tracker: inline when it fits one page,
 * otherwise in `put_info` / `get_info` pages (lib/info_pages.ts says why the tracker keeps it).
 * What comes from the tracker is bounded by the file's own dictionary length, which the client
 * works out from the name and size before it allocates anything, and checked against the
 * info_hash before anything uses it.
 *
 * @module
 */

import { errorMessage, TrackerUnavailableError, UserError } from "../lib/errors.ts";
import { infoPage, infoPageOffsets, InfoReceiver, isInlineInfo } from "../lib/info_pages.ts";
import { encodedInfoLength, infoHashHex } from "../lib/metainfo.ts";
import { MAX_FILE_BYTES } from "../lib/pieces.ts";
import { type GroupFile, Refusal } from "../lib/protocol.ts";
import type { TrackerRequest } from "./file_sharing.ts";

/**
 * What `share_file` carries of `infoBytes`: the dictionary inline when it fits one page;
 * otherwise it is sent first in `put_info` pages and `share_file` names its info_hash. The
 * caller sends one dictionary at a time per tracker connection (the tracker holds one).
 */
export async function shareInfoFields(
  request: TrackerRequest,
  infoHash: string,
  infoBytes: Uint8Array,
): Promise<{ info: string } | { info_hash: string }> {
  if (isInlineInfo(infoBytes.length)) return { info: infoBytes.toBase64() };
  for (const offset of infoPageOffsets(infoBytes.length)) {
    await request("put_info", {
      info_hash: infoHash,
      length: infoBytes.length,
      offset,
      data: infoPage(infoBytes, offset).toBase64(),
    });
  }
  return { info_hash: infoHash };
}

/**
 * The info dictionary of `file` as the tracker describes it: inline, or fetched page by page
 * into one buffer of the length a dictionary of this name and size has (at most
 * `MAX_INFO_BYTES`, 40 MiB for 1 TiB). Throws `UserError` when the tracker's description is
 * inconsistent or the bytes are not the info_hash's.
 */
export async function fetchInfo(
  request: TrackerRequest,
  file: Pick<GroupFile, "group" | "name" | "size" | "info_hash" | "info" | "info_length">,
): Promise<Uint8Array> {
  const inconsistent = (why: string) =>
    new UserError(`the tracker's description of "${file.name}" is inconsistent: ${why}`);
  if (!Number.isSafeInteger(file.size) || file.size < 0 || file.size > MAX_FILE_BYTES) {
    throw inconsistent(`a size of ${file.size} bytes`);
  }
  const expected = encodedInfoLength(new TextEncoder().encode(file.name).length, file.size);
  if (file.info !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.fromBase64(file.info);
    } catch (error) {
      throw inconsistent(errorMessage(error));
    }
    if (bytes.length !== expected || await infoHashHex(bytes) !== file.info_hash) {
      throw inconsistent("its info dictionary does not match its info_hash");
    }
    return bytes;
  }
  // the length a dictionary of this name and size has, whatever the tracker says
  if (file.info_length !== expected) {
    throw inconsistent(`an info dictionary of ${file.info_length} bytes, not ${expected}`);
  }
  const receiver = new InfoReceiver(file.info_hash, expected);
  try {
    while (!receiver.isComplete) {
      const offset = receiver.received;
      const { data } = await request("get_info", {
        group: file.group,
        info_hash: file.info_hash,
        offset,
      });
      // a page is at most 512 KiB: a longer string is refused before it is decoded
      if (typeof data !== "string" || data.length > Math.ceil(expected / 3) * 4 + 4) {
        throw new UserError(`its page at ${offset} is not one`);
      }
      receiver.add(offset, Uint8Array.fromBase64(data));
    }
    return await receiver.finish();
  } catch (error) {
    // the tracker away or refusing (the file went meanwhile) is said as it is
    if (error instanceof TrackerUnavailableError || error instanceof Refusal) throw error;
    throw inconsistent(errorMessage(error));
  }
}
