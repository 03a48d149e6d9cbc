/**
 * Handlers of the file requests: sharing a file in a group, listing a group's files, finding
 * who holds one (with a signed ticket to fetch it), announcing partial downloads, and ending
 * shares. Only members of a group see or fetch its files.
 *
 * @module
 */

import { errorMessage } from "../lib/errors.ts";
import { infoPageLength, isInlineInfo } from "../lib/info_pages.ts";
import { infoHashHex, parseInfo } from "../lib/metainfo.ts";
import {
  ANNOUNCE_STATES,
  fileNameProblem,
  isSha1Hex,
  isValidId,
  MAX_SHARES_PER_RESTORE,
  type PeerEndpoint,
  quoted,
  type RestoreRefusal,
  type ShareRecord,
  type ShareRestore,
} from "../lib/protocol.ts";
import {
  type Handler,
  type HandlerContext,
  listingPage,
  RequestError,
  requireMember,
  requireUser,
} from "./context.ts";
import type { SharedFile } from "./store.ts";
import { CHECK_TIMEOUT_MS } from "./address_checks.ts";
import { Presence } from "./presence.ts";
import { filesScope } from "./reply_cache.ts";

type FilesPage = Awaited<ReturnType<HandlerContext["store"]["filesPage"]>>;

type FileRequest =
  | "share_file"
  | "list_files"
  | "check_member"
  | "locate_file"
  | "find_peers"
  | "announce"
  | "stop_share"
  | "my_shares"
  | "restore_shares"
  | "put_info"
  | "get_info";

/**
 * Holders one `locate_file`, `find_peers` or `announce` reply names at most (a random sample
 * of them).
 */
export const MAX_PEERS_PER_REPLY = 50;
/**
 * The longest a share or announce waits for its connection's address check: a check takes
 * at most `CHECK_TIMEOUT_MS` once running, but may wait its turn longer; the holder is then
 * recorded and handed out once the check passes.
 */
const MAX_CHECK_WAIT_MS = CHECK_TIMEOUT_MS + 1_000;
/**
 * Files in one `list_files` page at most: with names of at most 238 bytes (twice that as
 * JSON at worst) a page stays under 300 KiB, well inside the 1 MiB frame.
 */
export const FILES_PER_PAGE = 500;
/** Files one member may share in one group (a group's listing stays bounded by its members). */
export const MAX_SHARES_PER_MEMBER = 1000;
/** Shares in one `my_shares` page at most. */
const MAX_SHARES_PER_PAGE = 200;
/** About how much of a frame one `my_shares` page fills at most (the frame limit is 1 MiB). */
const MAX_SHARE_PAGE_BYTES = 512 * 1024;
const MAX_PATH_LENGTH = 4096;

function checkFileName(name: string): void {
  const problem = fileNameProblem(name);
  if (problem) throw new RequestError("bad_request", problem);
}

async function requireFile(
  context: HandlerContext,
  group: string,
  name: string,
): Promise<SharedFile> {
  checkFileName(name);
  const file = await context.store.file(group, name);
  if (!file) throw new RequestError("not_found", `no file "${name}" in group "${group}"`);
  return file;
}

async function requireFileByHash(
  context: HandlerContext,
  group: string,
  infoHash: string,
): Promise<SharedFile> {
  const file = isSha1Hex(infoHash) ? await context.store.fileByHash(group, infoHash) : undefined;
  if (!file) throw new RequestError("not_found", `no such file in group "${group}"`);
  return file;
}

function requirePeerAddress(context: HandlerContext): PeerEndpoint {
  const peer = context.connection.peer;
  if (!peer) {
    throw new RequestError("bad_request", "this client did not say where it serves pieces");
  }
  return peer;
}

/**
 * Online holders at verified addresses other than the asking connection: a random sample of
 * at most `MAX_PEERS_PER_REPLY`, seeders first.
 */
async function peersFor(
  context: HandlerContext,
  group: string,
  infoHash: string,
): Promise<PeerEndpoint[]> {
  return (await context.presence.handOut(
    group,
    infoHash,
    context.connection.id,
    MAX_PEERS_PER_REPLY,
  ))
    .map((holder) => holder.address);
}

/**
 * The connection's peer address, once its address check (if one runs) has passed or waited
 * `MAX_CHECK_WAIT_MS`; `user` must still be the one logged in then.
 */
async function checkedPeerAddress(context: HandlerContext, user: string) {
  const address = requirePeerAddress(context);
  const check = context.addressCheck?.();
  if (check?.state === "pending") {
    await settledWithin(check.settled, MAX_CHECK_WAIT_MS);
    // the session may have been ended from elsewhere meanwhile
    if (requireUser(context) !== user) throw new RequestError("unauthenticated", "not logged in");
    context.addressCheck?.();
  }
  return address;
}

/**
 * Records that the connection holds a file. Waits (bounded) for its address check first, so
 * that a file is handed out from the moment its share is confirmed when its address is good.
 */
async function holdFile(
  context: HandlerContext,
  user: string,
  file: SharedFile,
  complete: boolean,
): Promise<void> {
  const address = await checkedPeerAddress(context, user);
  // told of who left the group while it was offline before it is handed out to anyone
  context.events.replayRevocations(context.connection, [file.group]);
  await context.presence.hold(file.group, file.infoHash, {
    connectionId: context.connection.id,
    user,
    address,
    complete,
  });
}

/** `holdFile` of many files of one connection: one wait for its address check, one write. */
async function holdFiles(
  context: HandlerContext,
  user: string,
  files: { group: string; infoHash: string }[],
): Promise<void> {
  if (files.length === 0) return;
  const address = await checkedPeerAddress(context, user);
  context.events.replayRevocations(context.connection, new Set(files.map((f) => f.group)));
  await context.presence.holdAll(files, {
    connectionId: context.connection.id,
    user,
    address,
    complete: true,
  });
}

/** Waits for `settled`, or `ms` at most. */
async function settledWithin(settled: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([settled, new Promise<void>((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

/** The sharer's own path and modification time of a shared file, as share requests give them. */
function checkSharedCopy(path: string, mtimeMs: number): void {
  if (path.length === 0 || path.length > MAX_PATH_LENGTH) {
    throw new RequestError("bad_request", "the shared path is empty or too long");
  }
  if (!Number.isSafeInteger(mtimeMs)) {
    throw new RequestError("bad_request", "mtime_ms must be an integer");
  }
}

/** The refusal of a share past `MAX_SHARES_PER_MEMBER` in `group`. */
function sharesLimitReached(group: string): RequestError {
  return new RequestError(
    "forbidden",
    `you share ${MAX_SHARES_PER_MEMBER} files in group "${group}", the most one member may; ` +
      `stop sharing one first`,
  );
}

/** The file handlers, by request type. */
export const FILE_HANDLERS: { [T in FileRequest]: Handler<T> } = {
  async share_file(context, request) {
    const user = await requireMember(context, request.group);
    checkFileName(request.name);
    // a share the user has already (an older client restoring at login) is looked up, not
    // counted: the count reads up to 1,000 rows, the lookup one
    // (counted again inside the write: requests on several connections at once)
    if (
      !(await context.store.hasShare(request.group, request.name, user)) &&
      (await context.store.countsOf(user, request.group)).sharesInGroup >= MAX_SHARES_PER_MEMBER
    ) {
      throw sharesLimitReached(request.group);
    }
    requirePeerAddress(context);
    if (!isSha1Hex(request.sha1)) {
      throw new RequestError("bad_request", "sha1 must be 40 hex digits");
    }
    checkSharedCopy(request.path, request.mtime_ms);
    let infoBytes: Uint8Array;
    let info: ReturnType<typeof parseInfo>;
    if (request.info === undefined) {
      // a dictionary too large for one frame came before in put_info pages
      if (request.info_hash === undefined || !isSha1Hex(request.info_hash)) {
        throw new RequestError("bad_request", "share_file needs info or an info_hash");
      }
      infoBytes = await context.infoUploads.take(context.connection.id, request.info_hash);
    } else {
      try {
        infoBytes = Uint8Array.fromBase64(request.info);
      } catch (error) {
        throw new RequestError(
          "bad_request",
          `the info dictionary is not base64: ${errorMessage(error)}`,
        );
      }
    }
    try {
      info = parseInfo(infoBytes);
    } catch (error) {
      throw new RequestError(
        "bad_request",
        `the info dictionary is not valid: ${errorMessage(error)}`,
      );
    }
    if (info.name !== request.name || info.length !== request.size) {
      throw new RequestError(
        "bad_request",
        "the info dictionary does not match the file's name and size",
      );
    }
    const file: SharedFile = {
      group: request.group,
      name: request.name,
      infoHash: await infoHashHex(infoBytes),
      size: request.size,
      sha1: request.sha1,
      info: infoBytes,
      infoLength: infoBytes.length,
    };
    const outcome = await context.store.shareFile(file, {
      user,
      path: request.path,
      mtimeMs: request.mtime_ms,
      maxSharesInGroup: MAX_SHARES_PER_MEMBER,
      asMember: true,
    });
    if (outcome === "limit") throw sharesLimitReached(request.group);
    if (outcome === "not_member") {
      throw new RequestError("forbidden", `you are not a member of group "${request.group}"`);
    }
    if (outcome === "conflict") {
      throw new RequestError(
        "conflict",
        `another file named "${request.name}" is already shared in group "${request.group}"`,
      );
    }
    if (outcome === "sha1_differs") {
      throw new RequestError("conflict", `"${file.name}" has the same pieces but another SHA-1`);
    }
    await holdFile(context, user, file, true);
    // a new file (not one shared again, nor a second holder of it) is news to the others
    if (outcome === "added") {
      context.events.notifyMembers(new Set(await context.store.members(file.group)), user, {
        push: "file_shared",
        group: file.group,
        name: file.name,
        size: file.size,
        user,
      });
    }
    return {
      group: file.group,
      name: file.name,
      size: file.size,
      sha1: file.sha1,
      info_hash: file.infoHash,
    };
  },

  async list_files(context, { group, after, limit }) {
    await requireMember(context, group);
    const page = listingPage(after, limit, FILES_PER_PAGE);
    const load = () => context.store.filesPage(group, page.after, page.size);
    const presence = context.presence;
    if (context.replies && presence instanceof Presence) {
      // seeders are live: counted on every call, the page made again when they changed
      const stamp = (files: FilesPage) =>
        files.map((file) => presence.seeders(group, file.infoHash));
      const build = (files: FilesPage) => {
        const seeders = stamp(files);
        return files.map((file, i) => ({
          name: file.name,
          size: file.size,
          sha1: file.sha1,
          seeders: seeders[i],
        }));
      };
      return await context.replies.page(filesScope(group), page.key, { load, build, stamp });
    }
    // presence shared by several instances: asked for the whole page at once
    const files = await load();
    const seeders = await presence.seedersOf(group, files.map((file) => file.infoHash));
    return files.map((file) => ({
      name: file.name,
      size: file.size,
      sha1: file.sha1,
      seeders: seeders.get(file.infoHash) ?? 0,
    }));
  },

  async check_member(context, { group }) {
    await requireMember(context, group);
    return { group, owner: await context.store.groupOwner(group) ?? "" };
  },

  async locate_file(context, { group, name }) {
    const user = await requireMember(context, group);
    const file = await requireFile(context, group, name);
    return {
      group,
      name,
      size: file.size,
      sha1: file.sha1,
      info_hash: file.infoHash,
      ...inlineInfo(file),
      peers: await peersFor(context, group, file.infoHash),
      ticket: context.tickets.issue({
        user,
        group,
        infoHash: file.infoHash,
        holder: context.connection.fingerprint,
      }),
    };
  },

  async find_peers(context, { group, info_hash }) {
    const user = await requireMember(context, group);
    const file = await requireFileByHash(context, group, info_hash);
    return {
      peers: await peersFor(context, group, file.infoHash),
      ticket: context.tickets.issue({
        user,
        group,
        infoHash: file.infoHash,
        holder: context.connection.fingerprint,
      }),
    };
  },

  async announce(context, { group, info_hash, state }) {
    const user = await requireMember(context, group);
    const file = await requireFileByHash(context, group, info_hash);
    if (!(ANNOUNCE_STATES as readonly string[]).includes(state)) {
      throw new RequestError("bad_request", `unknown announce state ${quoted(state)}`);
    }
    if (state === "stopped") {
      await context.presence.release(group, file.infoHash, context.connection.id);
      return null;
    }
    await holdFile(context, user, file, false);
    return { peers: await peersFor(context, group, file.infoHash) };
  },

  async stop_share(context, { group, name, keep_if_held }) {
    const user = await requireMember(context, group);
    const file = await requireFile(context, group, name);
    if (
      keep_if_held === true &&
      await context.presence.heldElsewhere(user, group, file.infoHash, context.connection.id)
    ) {
      // this client cannot serve it, another of the user's does: only this one lets go
      if (!(await context.store.hasShare(group, name, user))) {
        throw new RequestError("not_found", `you do not share "${name}" in group "${group}"`);
      }
      await context.presence.release(group, file.infoHash, context.connection.id);
      return { group, name, file_removed: false, kept: true };
    }
    const { removed, fileGone } = await context.store.removeShare(group, name, user);
    if (!removed) {
      throw new RequestError("not_found", `you do not share "${name}" in group "${group}"`);
    }
    await context.presence.releaseUser(user, group, file.infoHash);
    return keep_if_held === true
      ? { group, name, file_removed: fileGone, kept: false }
      : { group, name, file_removed: fileGone };
  },

  async my_shares(context, { after_group, after_name }) {
    const user = requireUser(context);
    const after = after_group !== undefined && after_name !== undefined
      ? { group: after_group, name: after_name }
      : undefined;
    const page: ShareRecord[] = [];
    let bytes = 0;
    const shares = await context.store.sharesOf(user, { after, limit: MAX_SHARES_PER_PAGE });
    for (const share of shares) {
      const record: ShareRecord = {
        group: share.group,
        name: share.name,
        size: share.size,
        sha1: share.sha1,
        info_hash: share.infoHash,
        ...inlineInfo(share),
        path: share.path,
        mtime_ms: share.mtimeMs,
      };
      // a page fits well inside a frame: 20 shares of 1 GiB files once made one too large
      bytes += (record.info?.length ?? 0) + record.path.length + 512;
      if (page.length > 0 && bytes > MAX_SHARE_PAGE_BYTES) break;
      page.push(record);
    }
    return page;
  },

  async restore_shares(context, { shares }) {
    const user = requireUser(context);
    requirePeerAddress(context);
    if (shares.length > MAX_SHARES_PER_RESTORE) {
      throw new RequestError(
        "bad_request",
        `restore_shares names at most ${MAX_SHARES_PER_RESTORE} shares`,
      );
    }
    const refusals = new Map<ShareRestore, RestoreRefusal>();
    const refuse = (share: ShareRestore, error: unknown) => {
      if (!(error instanceof RequestError)) throw error;
      refusals.set(share, {
        group: share.group,
        name: share.name,
        code: error.code,
        message: error.message,
      });
    };
    // each share is checked as share_file checks one: a bad one is refused alone
    const members = new Map<string, Promise<unknown>>();
    const checked: ShareRestore[] = [];
    for (const share of shares) {
      try {
        if (!isValidId(share.group)) {
          throw new RequestError("bad_request", `invalid group id ${quoted(share.group)}`);
        }
        checkFileName(share.name);
        if (!isSha1Hex(share.info_hash)) {
          throw new RequestError("bad_request", "info_hash must be 40 hex digits");
        }
        checkSharedCopy(share.path, share.mtime_ms);
        // a login's shares come a few groups at a time: each group is asked about once
        let member = members.get(share.group);
        if (!member) members.set(share.group, member = requireMember(context, share.group));
        await member;
        checked.push(share);
      } catch (error) {
        refuse(share, error);
      }
    }
    const found = await context.store.restoreShares(
      user,
      checked.map((share) => ({
        group: share.group,
        name: share.name,
        infoHash: share.info_hash,
        path: share.path,
        mtimeMs: share.mtime_ms,
      })),
    );
    const held: { group: string; infoHash: string }[] = [];
    for (const [index, share] of checked.entries()) {
      if (found[index]) {
        held.push({ group: share.group, infoHash: share.info_hash });
      } else {
        // gone since my_shares, or another file under the name: share_file decides, limits too
        refuse(
          share,
          new RequestError(
            "not_found",
            `you do not share "${share.name}" in group "${share.group}"`,
          ),
        );
      }
    }
    await holdFiles(context, user, held);
    // in the order the shares were named
    const refused: RestoreRefusal[] = [];
    for (const share of shares) {
      const refusal = refusals.get(share);
      if (refusal) refused.push(refusal);
    }
    return { refused };
  },

  put_info(context, { info_hash, length, offset, data }) {
    requireUser(context);
    if (!isSha1Hex(info_hash)) {
      throw new RequestError("bad_request", "info_hash must be 40 hex digits");
    }
    let page: Uint8Array;
    try {
      page = Uint8Array.fromBase64(data);
    } catch (error) {
      throw new RequestError("bad_request", `the info page is not base64: ${errorMessage(error)}`);
    }
    return {
      received: context.infoUploads.put(context.connection.id, info_hash, length, offset, page),
    };
  },

  async get_info(context, { group, info_hash, offset }) {
    await requireMember(context, group);
    const file = await requireFileByHash(context, group, info_hash);
    let length: number;
    try {
      length = infoPageLength(file.infoLength, offset);
    } catch (error) {
      throw new RequestError("bad_request", errorMessage(error));
    }
    const page = await context.store.infoPage(group, file.infoHash, offset, length);
    // the file may have gone (or changed) since it was looked up
    if (page?.length !== length) {
      throw new RequestError("not_found", `no such file in group "${group}"`);
    }
    return { data: page.toBase64() };
  },
};

/**
 * The info dictionary inline when it fits one page, and its length either way (a larger one
 * is read with `get_info`).
 */
function inlineInfo(file: SharedFile): { info?: string; info_length: number } {
  return isInlineInfo(file.infoLength)
    ? { info: file.info.toBase64(), info_length: file.infoLength }
    : { info_length: file.infoLength };
}
