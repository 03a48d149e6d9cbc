/**
 * The client's per-user state directory (`$XDG_STATE_HOME/swarmshare`): its TLS identity
 * (`identity.key` + `identity.crt`), the trackers it has pinned (`known_trackers`, one
 * `<host>:<port> SHA256:<hex>` per line, like ssh's known_hosts), the addresses at which a
 * certificate authority has vouched for the tracker (`authority_trackers`, one `<host>:<port>`
 * per line, 0600: no longer trusted on first use there), the shares a tracker
 * has not heard of yet (`pending_shares/`, one JSON file each), the downloads not
 * finished yet (`unfinished_downloads/`, one JSON file each, resumed at the next login), and
 * each user's shell history (`history/<user_id>`, one line per command). The directory is
 * private (0700), the key, history and JSON files 0600; this module is the only one that
 * touches these files.
 *
 * @example
 * ```ts
 * const state = await StateDir.open(defaultStateDir());
 * const me = await state.identity();
 * const pinned = await state.knownTracker("127.0.0.1:5000");
 * ```
 *
 * @module
 */

import { resolve } from "node:path";
import { stateHome } from "../lib/paths.ts";
import { terminalSafe } from "../lib/terminal_text.ts";
import { UserError } from "../lib/errors.ts";
import {
  derToPem,
  type Fingerprint,
  formatFingerprint,
  generateIdentity,
  type Identity,
  importKeyPair,
  loadIdentity,
  parseFingerprint,
  pemToDer,
} from "../lib/identity.ts";
import { createSelfSignedCertificate } from "../lib/x509.ts";
import { MAX_INFO_BYTES } from "../lib/metainfo.ts";
import { FileTooLargeError, readFileBounded, writeAll } from "../lib/io.ts";
import { isAbsolute, normalize } from "node:path";
import { fileNameProblem, idProblem, isSha1Hex, type ShareRecord } from "../lib/protocol.ts";

const KEY_FILE = "identity.key";
const CERT_FILE = "identity.crt";
const KNOWN_TRACKERS_FILE = "known_trackers";
/**
 * Addresses once accepted because a certificate authority vouched for the tracker there, one
 * `host:port` per line. A file of its own rather than a new kind of line in known_trackers:
 * older clients would skip such a line (`parseKnownTrackers` skips what it cannot read), but
 * known_trackers is the user's to read and edit as ssh's known_hosts, and a line there reads
 * as a pin; here removing a line is the one way back to trust on first use at that address,
 * and a client without this file (or older than it) just never reads it.
 */
export const AUTHORITY_TRACKERS_FILE = "authority_trackers";
/** Identity files are a few hundred bytes; anything this big is not ours. */
const IDENTITY_FILE_LIMIT_BYTES = 64 * 1024;
/**
 * known_trackers and authority_trackers are read whole on every lookup, and refused (a
 * UserError naming the file) when larger: ~10,000 pins, or ~4,000 of the longest host names
 * (253 characters), fit in 1 MiB.
 */
const TRACKERS_FILE_LIMIT_BYTES = 1024 * 1024;
const PENDING_SHARES_DIR = "pending_shares";
/**
 * A pending share is mostly its info dictionary as base64: up to 54 MiB for a 1 TiB file
 * (`MAX_INFO_BYTES`), which goes to the tracker in pages.
 */
const PENDING_SHARE_LIMIT_BYTES = Math.ceil(MAX_INFO_BYTES / 3) * 4 + 64 * 1024;
const UNFINISHED_DOWNLOADS_DIR = "unfinished_downloads";
/** A remembered download is a path and a few names: 16 KiB is far more than one needs. */
const UNFINISHED_DOWNLOAD_LIMIT_BYTES = 16 * 1024;
/** The longest download path remembered (Linux's PATH_MAX). */
const MAX_DOWNLOAD_PATH_BYTES = 4096;
/**
 * Unfinished downloads one user may have on a client (running, waiting or paused): each is
 * remembered in a file and asked about at every login, so their number is bounded.
 */
export const MAX_UNFINISHED_DOWNLOADS = 100;
/**
 * Files of unfinished_downloads/ read at one login, over every tracker and user sharing the
 * state directory: a directory filled by something else costs a bounded read.
 */
export const MAX_UNFINISHED_FILES_READ = 1_000;
/** Entries of unfinished_downloads/ listed at one login, at most (their names are kept). */
export const MAX_UNFINISHED_ENTRIES_LISTED = 10_000;
/**
 * Unusable files of unfinished_downloads/ said one by one at a login; the rest are counted in
 * one more line, so a directory of junk costs the user a screenful, not a thousand lines.
 */
export const MAX_UNFINISHED_PROBLEMS = 10;
const HISTORY_DIR = "history";
/** Lines kept per user, oldest dropped first (bash's HISTFILESIZE is 500, zsh's SAVEHIST 1000). */
export const HISTORY_LINES = 1000;
/**
 * The most of a history file read: its last 1 MiB (1,000 lines of commands fit well within
 * it). A larger file is cut to its last lines when saved, as bash cuts to HISTFILESIZE.
 */
export const HISTORY_LIMIT_BYTES = 1024 * 1024;
/** The longest line kept in a history: a command names a path of at most 4 KiB. */
export const HISTORY_LINE_MAX_CHARS = 8192;
const CLIENT_COMMON_NAME = "swarmshare client";
const NEW_IDENTITY_ADVICE = `move ${KEY_FILE} and ${CERT_FILE} away to make a new identity`;
const isWindows = Deno.build.os === "windows";

/** $XDG_STATE_HOME/swarmshare, else $HOME/.local/state/swarmshare; throws UserError when neither variable is set. */
export function defaultStateDir(
  env: { get(name: string): string | undefined } = Deno.env,
): string {
  // one rule for the client's and the tracker's state (lib/paths.ts)
  return resolve(stateHome(env), "swarmshare");
}

/** `host:port` as known_trackers keys it: IPv6 in brackets, e.g. `[::1]:5000`. */
export function trackerAddress(host: string, port: number): string {
  return normalizeAddress(host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
}

/** The client's private directory: its identity and the trackers it has pinned. */
export class StateDir {
  private constructor(readonly path: string) {}

  /**
   * Creates the directory (and parents) with mode 0700; an existing one is tightened to 0700
   * (say nothing) but refused with a UserError when it is a symlink, not a directory, or not
   * owned by this uid.
   */
  static async open(path: string): Promise<StateDir> {
    let info = await lstatIfExists(path);
    if (!info) {
      try {
        await Deno.mkdir(path, { recursive: true, mode: 0o700 });
      } catch (error) {
        throw new UserError(`cannot create state directory ${path}: ${(error as Error).message}`);
      }
      info = await Deno.lstat(path);
    }
    if (info.isSymlink) {
      throw new UserError(
        `state directory ${path} is a symbolic link; point XDG_STATE_HOME at the real directory`,
      );
    }
    if (!info.isDirectory) throw new UserError(`state directory ${path} is not a directory`);
    if (!isWindows && info.uid !== null) {
      const uid = await currentUid(path);
      if (info.uid !== uid) {
        throw new UserError(`state directory ${path} belongs to another user (uid ${info.uid})`);
      }
      if (((info.mode ?? 0) & 0o777) !== 0o700) await Deno.chmod(path, 0o700);
    }
    return new StateDir(path);
  }

  /**
   * The client's identity: identity.key (PKCS#8 PEM, mode 0600) + identity.crt; made on first
   * use. Clients starting at once on an empty directory end with one identity: each file is
   * written under a temporary name and hard-linked into place, which never replaces an
   * existing file, and the loser of a link loads the winner's file.
   */
  async identity(): Promise<Identity> {
    let keyPem = await this.#readIdentityFile(KEY_FILE);
    if (keyPem === undefined) {
      // the key is always published before the certificate, so a certificate without a key
      // means someone moved the key away
      if (await this.#readIdentityFile(CERT_FILE) !== undefined) {
        keyPem = await this.#readIdentityFile(KEY_FILE);
        if (keyPem === undefined) {
          throw new UserError(
            `${this.#join(CERT_FILE)} exists without ${KEY_FILE}; ${NEW_IDENTITY_ADVICE}`,
          );
        }
      } else {
        const fresh = await generateIdentity(CLIENT_COMMON_NAME);
        keyPem = await this.#publish(KEY_FILE, fresh.keyPem, 0o600) ?? fresh.keyPem;
      }
    }
    let pkcs8: Uint8Array;
    try {
      pkcs8 = pemToDer(keyPem, "PRIVATE KEY");
    } catch (error) {
      throw this.#badFile(KEY_FILE, (error as Error).message);
    }

    let certPem = await this.#readIdentityFile(CERT_FILE);
    if (certPem === undefined) {
      // the first start, or a second client that lost the race for the key
      let keys: CryptoKeyPair;
      try {
        keys = await importKeyPair(pkcs8);
      } catch (error) {
        throw this.#badFile(KEY_FILE, (error as Error).message);
      }
      const fresh = derToPem(
        await createSelfSignedCertificate(keys, { commonName: CLIENT_COMMON_NAME }),
        "CERTIFICATE",
      );
      certPem = await this.#publish(CERT_FILE, fresh, 0o644) ?? fresh;
    }
    let certDer: Uint8Array;
    try {
      certDer = pemToDer(certPem, "CERTIFICATE");
    } catch (error) {
      throw this.#badFile(CERT_FILE, (error as Error).message);
    }
    try {
      return await loadIdentity(pkcs8, certDer);
    } catch (error) {
      const message = (error as Error).message;
      throw /certificate/.test(message)
        ? this.#badFile(CERT_FILE, message.replace("this private key", `the key in ${KEY_FILE}`))
        : this.#badFile(KEY_FILE, message);
    }
  }

  /** The pinned fingerprint for "host:port" from known_trackers, if any (the first entry wins). */
  async knownTracker(address: string): Promise<Fingerprint | undefined> {
    const wanted = normalizeAddress(address);
    for (const entry of parseKnownTrackers(await this.#readTrackersFile(KNOWN_TRACKERS_FILE))) {
      if (entry.address === wanted) return entry.fingerprint;
    }
    return undefined;
  }

  /**
   * Appends "host:port SHA256:hex" to known_trackers (mode 0600). Never replaces an existing
   * entry: throws a UserError if one exists with another fingerprint.
   */
  async rememberTracker(address: string, fingerprint: Fingerprint): Promise<void> {
    const normalized = normalizeAddress(address);
    const shown = formatFingerprint(fingerprint);
    const text = await this.#readTrackersFile(KNOWN_TRACKERS_FILE);
    const existing = parseKnownTrackers(text).find((entry) => entry.address === normalized);
    if (existing?.fingerprint === fingerprint) return;
    if (existing) {
      throw new UserError(
        `${this.#join(KNOWN_TRACKERS_FILE)} already pins ${normalized} to ` +
          `${formatFingerprint(existing.fingerprint)}, not ${shown}; edit that line if the ` +
          `tracker's identity really changed`,
      );
    }
    const separator = text.length > 0 && !text.endsWith("\n") ? "\n" : "";
    const path = this.#join(KNOWN_TRACKERS_FILE);
    using file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    if (!isWindows) await Deno.chmod(path, 0o600);
    // one write of a short line: appends from two clients do not interleave
    await writeAll(file, new TextEncoder().encode(`${separator}${normalized} ${shown}\n`));
  }

  /**
   * Whether a certificate authority has vouched for the tracker at "host:port" before
   * (authority_trackers lists it): there a certificate no authority vouches for is refused.
   */
  async wasVouchedByAuthority(address: string): Promise<boolean> {
    const wanted = normalizeAddress(address);
    return parseAuthorityTrackers(await this.#readTrackersFile(AUTHORITY_TRACKERS_FILE))
      .includes(wanted);
  }

  /**
   * Appends "host:port" to authority_trackers (mode 0600) unless it is listed already: from
   * then on `wasVouchedByAuthority` holds for it.
   */
  async rememberAuthorityTracker(address: string): Promise<void> {
    const normalized = normalizeAddress(address);
    const text = await this.#readTrackersFile(AUTHORITY_TRACKERS_FILE);
    if (parseAuthorityTrackers(text).includes(normalized)) return;
    const separator = text.length > 0 && !text.endsWith("\n") ? "\n" : "";
    const path = this.#join(AUTHORITY_TRACKERS_FILE);
    using file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    if (!isWindows) await Deno.chmod(path, 0o600);
    // one write of a short line: appends from two clients do not interleave
    await writeAll(file, new TextEncoder().encode(`${separator}${normalized}\n`));
  }

  /**
   * The shares of `user` that the tracker at `address` has not acknowledged yet (a download
   * completed while it was away), so that a client stopped before the tracker came back
   * still shares them at its next login. Unreadable or malformed entries are skipped.
   */
  pendingShares(address: string, user: string): PendingShares {
    const tracker = normalizeAddress(address);
    const dir = this.#join(PENDING_SHARES_DIR);
    const fileOf = (group: string, name: string) => keyedFile(dir, [tracker, user, group, name]);
    return {
      list: async () => {
        const shares: ShareRecord[] = [];
        if (!await privateSubdir(dir, false)) return shares;
        let entries: Deno.DirEntry[];
        try {
          entries = await Array.fromAsync(Deno.readDir(dir));
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) return shares;
          throw new UserError(`cannot read ${dir}: ${(error as Error).message}`);
        }
        for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
          if (!entry.isFile || !entry.name.endsWith(".json")) continue;
          try {
            const bytes = await readFileBounded(`${dir}/${entry.name}`, PENDING_SHARE_LIMIT_BYTES);
            const saved = JSON.parse(new TextDecoder().decode(bytes));
            if (saved?.tracker !== tracker || saved?.user !== user) continue;
            if (isShareRecord(saved.share)) shares.push(saved.share);
          } catch {
            // half written by a client that died, or not ours: skipped
          }
        }
        return shares;
      },
      add: async (share) => {
        await privateSubdir(dir, true);
        await writePrivateJson(await fileOf(share.group, share.name), { tracker, user, share });
      },
      remove: async (group, name) => {
        if (!await privateSubdir(dir, false)) return;
        await Deno.remove(await fileOf(group, name)).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
      },
    };
  }

  /**
   * The downloads `user` has not finished with the tracker at `address`, resumed at their
   * next login on this client. A file that is unreadable, malformed or names what no client
   * of ours would write (a relative path, a path whose last part is not the file's name) is
   * reported in `problems` and skipped, never trusted.
   */
  unfinishedDownloads(address: string, user: string): UnfinishedDownloads {
    const tracker = normalizeAddress(address);
    const dir = this.#join(UNFINISHED_DOWNLOADS_DIR);
    const fileOf = (group: string, name: string) => keyedFile(dir, [tracker, user, group, name]);
    return {
      list: async () => {
        const found: UnfinishedList = { downloads: [], problems: [] };
        const unusable = await subdirProblem(dir);
        if (unusable === "missing") return found;
        if (unusable) {
          found.problems.push({ file: dir, reason: unusable });
          return found;
        }
        const entries: Deno.DirEntry[] = [];
        let listedAll = true;
        try {
          for await (const entry of Deno.readDir(dir)) {
            if (entries.length >= MAX_UNFINISHED_ENTRIES_LISTED) {
              listedAll = false;
              break;
            }
            entries.push(entry);
          }
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) return found;
          found.problems.push({
            file: dir,
            reason: `it cannot be read: ${(error as Error).message}`,
          });
          return found;
        }
        const files = entries.filter((entry) => entry.name.endsWith(".json"))
          .sort((a, b) => a.name.localeCompare(b.name));
        if (!listedAll || files.length > MAX_UNFINISHED_FILES_READ) {
          found.problems.push({
            file: dir,
            reason: `it holds ${listedAll ? files.length : "too many"} files; only ` +
              `${MAX_UNFINISHED_FILES_READ} were read`,
          });
        }
        let unsaid = 0;
        const problem = (file: string, reason: string) => {
          if (found.problems.length < MAX_UNFINISHED_PROBLEMS) {
            found.problems.push({ file, reason });
          } else unsaid++;
        };
        for (const entry of files.slice(0, MAX_UNFINISHED_FILES_READ)) {
          const file = `${dir}/${entry.name}`;
          let saved: Record<string, unknown> | null;
          try {
            // never followed: a link could make this read, and the login trust, any file
            if (entry.isSymlink) throw new Error("a symbolic link");
            if (!entry.isFile) throw new Error("not a regular file");
            const bytes = await readFileBounded(file, UNFINISHED_DOWNLOAD_LIMIT_BYTES);
            saved = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
          } catch (error) {
            const reason = error instanceof FileTooLargeError
              ? "larger than 16 KiB"
              : error instanceof SyntaxError
              ? "not valid JSON"
              : error instanceof TypeError
              ? "not UTF-8 text"
              : (error as Error).message;
            problem(file, reason);
            continue;
          }
          if (
            typeof saved !== "object" || saved === null || Array.isArray(saved) ||
            typeof saved.tracker !== "string" || typeof saved.user !== "string"
          ) {
            problem(file, "not a remembered download");
            continue;
          }
          if (saved.tracker !== tracker || saved.user !== user) continue; // someone else's
          const invalid = unfinishedDownloadProblem(saved.download);
          const download = saved.download as UnfinishedDownload;
          if (invalid) {
            problem(file, invalid);
          } else if (found.downloads.length >= MAX_UNFINISHED_DOWNLOADS) {
            problem(file, `more than ${MAX_UNFINISHED_DOWNLOADS} unfinished downloads`);
          } else if (file !== await fileOf(download.group, download.name)) {
            problem(file, "its name does not match its download");
          } else {
            found.downloads.push(download);
          }
        }
        if (unsaid > 0) {
          found.problems.push({
            file: dir,
            reason: `${unsaid} more unusable file${unsaid === 1 ? "" : "s"} in it skipped`,
          });
        }
        return found;
      },
      put: async (download) => {
        await privateSubdir(dir, true);
        const file = await fileOf(download.group, download.name);
        await writePrivateJson(file, { tracker, user, download });
      },
      remove: async (group, name) => {
        if (!await privateSubdir(dir, false)) return;
        await Deno.remove(await fileOf(group, name)).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
      },
    };
  }

  /**
   * The shell history of `user` (an id as the tracker accepts it, so a safe file name once
   * prefixed): lines oldest first, at most `HISTORY_LINES`, from the last
   * `HISTORY_LIMIT_BYTES` of the file at most. Saving appends to what is there, so two
   * clients of one user both keep their lines; the file is replaced whole (mode 0600). A line
   * with a character a terminal acts on or longer than `HISTORY_LINE_MAX_CHARS` is dropped
   * (readline would draw it raw when recalled). Only a regular file is read or replaced:
   * a symbolic link, a pipe or a directory in its place is refused with a UserError, never
   * followed, waited on or removed.
   */
  history(user: string): History {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(user)) throw new UserError(`invalid user id "${user}"`);
    const dir = this.#join(HISTORY_DIR);
    // "." and ".." are valid ids: a prefix keeps every name a plain file in the directory
    const path = `${dir}/user-${user}`;
    const load = async (): Promise<string[]> => {
      if (!await privateSubdir(dir, false)) return [];
      let text: string;
      try {
        text = await readTail(path, HISTORY_LIMIT_BYTES);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return [];
        if (error instanceof UserError) throw error;
        throw new UserError(`cannot read ${path}: ${(error as Error).message}`);
      }
      return text.split("\n").filter(isHistoryLine).slice(-HISTORY_LINES);
    };
    return {
      path,
      load,
      append: async (lines) => {
        const kept = lines.filter(isHistoryLine);
        if (kept.length === 0) return;
        await privateSubdir(dir, true);
        const all = [...await load(), ...kept].slice(-HISTORY_LINES);
        const temporary = `${path}.${crypto.getRandomValues(new Uint8Array(8)).toHex()}`;
        try {
          {
            using file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
            if (!isWindows) await Deno.chmod(temporary, 0o600);
            await writeAll(file, new TextEncoder().encode(`${all.join("\n")}\n`));
          }
          await Deno.rename(temporary, path);
        } finally {
          await Deno.remove(temporary).catch(() => {});
        }
      },
    };
  }

  #join(name: string): string {
    return `${this.path}/${name}`;
  }

  #badFile(name: string, problem: string): UserError {
    return new UserError(`${this.#join(name)}: ${problem}; ${NEW_IDENTITY_ADVICE}`);
  }

  /** A file's text, or undefined when it does not exist. */
  async #readIdentityFile(name: string): Promise<string | undefined> {
    const path = this.#join(name);
    try {
      const bytes = await readFileBounded(path, IDENTITY_FILE_LIMIT_BYTES);
      if (name === KEY_FILE && !isWindows) await tightenKeyFile(path);
      return new TextDecoder().decode(bytes);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      if (error instanceof FileTooLargeError) throw this.#badFile(name, "larger than 64 KiB");
      throw this.#badFile(name, `cannot read it: ${(error as Error).message}`);
    }
  }

  /**
   * Writes `text` to `name` unless it exists. Returns undefined when ours went in, else the
   * text that was there first (whoever linked first won).
   */
  async #publish(name: string, text: string, mode: number): Promise<string | undefined> {
    const final = this.#join(name);
    const temporary = this.#join(`.${name}.${crypto.getRandomValues(new Uint8Array(8)).toHex()}`);
    try {
      {
        using file = await Deno.open(temporary, { write: true, createNew: true, mode });
        if (!isWindows) await Deno.chmod(temporary, mode);
        await writeAll(file, new TextEncoder().encode(text));
        await file.syncData();
      }
      try {
        await Deno.link(temporary, final);
        return undefined;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    } catch (error) {
      throw new UserError(`cannot write ${final}: ${(error as Error).message}`);
    } finally {
      await Deno.remove(temporary).catch(() => {});
    }
    const winner = await this.#readIdentityFile(name);
    if (winner === undefined) throw this.#badFile(name, "it vanished while being created");
    return winner;
  }

  /** known_trackers or authority_trackers as text ("" when missing), at most 1 MiB. */
  async #readTrackersFile(name: string): Promise<string> {
    const path = this.#join(name);
    try {
      return new TextDecoder().decode(await readFileBounded(path, TRACKERS_FILE_LIMIT_BYTES));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "";
      if (error instanceof FileTooLargeError) {
        throw new UserError(`${path} is larger than 1 MiB; remove the entries you no longer need`);
      }
      throw new UserError(`cannot read ${path}: ${(error as Error).message}`);
    }
  }
}

/** One user's shell history on this client. */
export interface History {
  /** The file it lives in. */
  readonly path: string;
  /** The saved lines, oldest first (none when there is no file yet). */
  load(): Promise<string[]>;
  /** Adds `lines` (oldest first) after the saved ones, keeping the last `HISTORY_LINES`. */
  append(lines: readonly string[]): Promise<void>;
}

/** Where a client keeps the shares one tracker has not acknowledged yet, for one user. */
export interface PendingShares {
  /** Every pending share, in no particular order. */
  list(): Promise<ShareRecord[]>;
  /** Keeps a share (replacing one of the same group and name). */
  add(share: ShareRecord): Promise<void>;
  /** Forgets a share (the tracker has it now, or it is no longer shared). */
  remove(group: string, name: string): Promise<void>;
}

/** An unfinished download as the client remembers it, to resume it at the next login. */
export interface UnfinishedDownload {
  group: string;
  name: string;
  /** The file's final path (absolute); its part file is beside it. */
  path: string;
  /** Of the file being downloaded: one shared later under the same name is not resumed. */
  info_hash: string;
  /** Paused by the user: it stays paused after a restart. */
  paused: boolean;
  /** Pieces verified when it was last saved, shown while it stays paused. */
  pieces_done: number;
}

/** What `UnfinishedDownloads.list` found: the downloads, and the files it skipped and why. */
export interface UnfinishedList {
  downloads: UnfinishedDownload[];
  problems: { file: string; reason: string }[];
}

/** Where a client keeps one user's unfinished downloads from one tracker. */
export interface UnfinishedDownloads {
  /** Every remembered download (at most `MAX_UNFINISHED_DOWNLOADS`) and every file skipped. */
  list(): Promise<UnfinishedList>;
  /** Remembers a download (replacing the one of the same group and name), atomically. */
  put(download: UnfinishedDownload): Promise<void>;
  /** Forgets a download (finished, failed or cancelled). */
  remove(group: string, name: string): Promise<void>;
}

/**
 * Why a value read back is not an `UnfinishedDownload` this client would have written, or
 * undefined when it is one. The path must be absolute, normal and end in the file's name, so
 * that a planted file can make a download write nowhere a `download_file` could not.
 */
export function unfinishedDownloadProblem(value: unknown): string | undefined {
  const download = value as Record<string, unknown> | null;
  if (typeof download !== "object" || download === null || Array.isArray(download)) {
    return "no download in it";
  }
  const { group, name, path, info_hash, paused, pieces_done } = download;
  if (typeof group !== "string" || idProblem("group", group)) return "no valid group id";
  if (typeof name !== "string" || fileNameProblem(name)) return "no valid file name";
  if (
    typeof path !== "string" || !isAbsolute(path) || normalize(path) !== path ||
    new TextEncoder().encode(path).length > MAX_DOWNLOAD_PATH_BYTES ||
    !path.endsWith(`/${name}`)
  ) {
    return "its path is not an absolute path to the file";
  }
  if (typeof info_hash !== "string" || !isSha1Hex(info_hash)) return "no valid info_hash";
  if (typeof paused !== "boolean") return "no valid paused flag";
  if (!Number.isSafeInteger(pieces_done) || (pieces_done as number) < 0) {
    return "no valid piece count";
  }
  return undefined;
}

/** `<dir>/<hex>.json`, the hex naming `parts` (SHA-256, first 16 bytes). */
async function keyedFile(dir: string, parts: string[]): Promise<string> {
  const key = new TextEncoder().encode(parts.join("\n"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  return `${dir}/${digest.subarray(0, 16).toHex()}.json`;
}

/**
 * Writes `value` as JSON to `final` (mode 0600) under a temporary name, then renames it into
 * place: whole or not at all, for a reader and for a client killed mid-write.
 */
async function writePrivateJson(final: string, value: unknown): Promise<void> {
  const temporary = `${final}.${crypto.getRandomValues(new Uint8Array(8)).toHex()}`;
  try {
    {
      using file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
      await writeAll(file, new TextEncoder().encode(JSON.stringify(value)));
      await file.syncData();
    }
    await Deno.rename(temporary, final);
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
}

function isShareRecord(value: unknown): value is ShareRecord {
  const share = value as Record<string, unknown> | null;
  return typeof share === "object" && share !== null &&
    typeof share.group === "string" && typeof share.name === "string" &&
    Number.isSafeInteger(share.size) && typeof share.sha1 === "string" &&
    isSha1Hex(share.sha1) && typeof share.info_hash === "string" &&
    isSha1Hex(share.info_hash) && typeof share.info === "string" &&
    typeof share.path === "string" && Number.isSafeInteger(share.mtime_ms);
}

/**
 * The entries of a known_trackers file, in order: a line is `host:port SHA256:hex`; comments
 * (`#`) and malformed lines are skipped, never an error (the file is the user's to edit).
 */
export function parseKnownTrackers(text: string): { address: string; fingerprint: Fingerprint }[] {
  const entries = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 2 || fields[0].startsWith("#")) continue;
    try {
      entries.push({
        address: normalizeAddress(fields[0]),
        fingerprint: parseFingerprint(fields[1]),
      });
    } catch {
      // malformed lines are skipped, as ssh does with known_hosts
    }
  }
  return entries;
}

/**
 * The addresses of an authority_trackers file, in order: a line is `host:port`; comments
 * (`#`), blank and malformed lines (binary, several fields, no port) are skipped, never an
 * error, as in known_trackers (the file is the user's to edit).
 */
export function parseAuthorityTrackers(text: string): string[] {
  const addresses = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 1 || fields[0] === "" || fields[0].startsWith("#")) continue;
    try {
      addresses.push(normalizeAddress(fields[0]));
    } catch {
      // malformed lines are skipped, as in known_trackers
    }
  }
  return addresses;
}

/** `host:port` with the host lowercased and IP literals in canonical form; UserError otherwise. */
export function normalizeAddress(address: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]\/]+):([0-9]{1,5})$/.exec(address);
  const port = match ? Number(match[2]) : 0;
  if (match && port >= 1 && port <= 65_535) {
    try {
      // the URL parser canonicalises IPv4 and IPv6 literals and lowercases names
      return `${new URL(`http://${match[1]}/`).hostname}:${port}`;
    } catch {
      // not a host: refused below
    }
  }
  throw new UserError(`not a tracker address (host:port, IPv6 as [::1]:5000): ${address}`);
}

async function lstatIfExists(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new UserError(`cannot use state directory ${path}: ${(error as Error).message}`);
  }
}

/**
 * This process's uid. Deno.uid() needs --allow-sys=uid (and would prompt for it on a
 * terminal), so without it the owner of a file we create in `dir` tells us.
 */
/**
 * This process's uid: from the system when `--allow-sys=uid` is granted, else as the owner of
 * a file it creates (and removes) in `dir`, which must be writable.
 */
export async function currentUid(dir: string): Promise<number | null> {
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
    return Deno.uid();
  }
  let probe: string;
  try {
    probe = await Deno.makeTempFile({ dir, prefix: ".owner-" });
  } catch (error) {
    throw new UserError(`cannot write to state directory ${dir}: ${(error as Error).message}`);
  }
  try {
    return (await Deno.lstat(probe)).uid;
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

async function tightenKeyFile(path: string): Promise<void> {
  const info = await Deno.stat(path);
  if (((info.mode ?? 0) & 0o077) !== 0) await Deno.chmod(path, 0o600);
}

/**
 * What is wrong with `path` as a directory of ours inside the state directory: "missing", a
 * reason (a symbolic link, which would put our files where it points; anything else but a
 * directory), or undefined when it is a real directory.
 */
async function subdirProblem(path: string): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "missing";
    return `it cannot be used: ${(error as Error).message}`;
  }
  if (info.isSymlink) return "it is a symbolic link; nothing in it is read or written";
  if (!info.isDirectory) return "it is not a directory";
  return undefined;
}

/**
 * Makes sure `path`, a directory of ours inside the state directory, is a real directory:
 * created (0700) when missing and `create` says so, else false; refused with a UserError
 * when anything else stands there (`subdirProblem`).
 */
async function privateSubdir(path: string, create: boolean): Promise<boolean> {
  let problem = await subdirProblem(path);
  if (problem === "missing") {
    if (!create) return false;
    await Deno.mkdir(path, { mode: 0o700 }).catch((error) => {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    });
    problem = await subdirProblem(path);
  }
  if (problem) throw new UserError(`${path}: ${problem}`);
  return true;
}

/**
 * The last `limitBytes` (at most) of the regular file at `path`, as text, from its first
 * whole line. Throws Deno.errors.NotFound when there is none, and a UserError when something
 * else stands there (a link is not followed, a pipe not opened).
 */
async function readTail(path: string, limitBytes: number): Promise<string> {
  const info = await Deno.lstat(path);
  if (info.isSymlink) throw new UserError(`${path} is a symbolic link; it is not followed`);
  if (!info.isFile) throw new UserError(`${path} is not a regular file`);
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const start = Math.max(0, size - limitBytes);
  if (start > 0) await file.seek(start, Deno.SeekMode.Start);
  const buffer = new Uint8Array(Math.min(size, limitBytes));
  let length = 0;
  while (length < buffer.length) {
    const count = await file.read(buffer.subarray(length));
    if (count === null) break;
    length += count;
  }
  const text = new TextDecoder().decode(buffer.subarray(0, length));
  if (start === 0) return text;
  // cut into the middle of a line: that line is not whole (and without a break, none is)
  const cut = text.indexOf("\n");
  return cut < 0 ? "" : text.slice(cut + 1);
}

/** A line worth keeping in a history: a command, one line, nothing a terminal acts on. */
function isHistoryLine(line: string): boolean {
  return line.trim() !== "" && line.length <= HISTORY_LINE_MAX_CHARS && !line.includes("\n") &&
    terminalSafe(line) === line && !line.includes("\ufffd");
}
