/**
 * Listing pages kept between the writes that change them. `list_groups` and `list_files`
 * answer most requests with pages that change only when a group, a membership or a file
 * does; reading them from the store and serializing them on every call was most of the
 * tracker's work (a `list_groups` page of 100 groups: a third of the main thread at 5,000
 * links). A page is kept with its JSON text, encoded once; the frame writer copies that text
 * into each reply (`jsonOf`).
 *
 * A page is kept only when the store reports every change to it (`TrackerStore.watch`):
 * SQLite does, since this process is its only writer; PostgreSQL does not, since other
 * instances write there too, so on it every call reads the store as before. A write drops
 * the pages of its scope before any later request reads them, and a page read while a write
 * happened is not kept (`generation`), so the next read after a write sees it.
 *
 * What a page shows beyond the store's rows (the seeders of `list_files`, live presence) is
 * recomputed on every call (`stamp`); its JSON is made again only when that changed.
 *
 * Memory: at most `maxBytes` of JSON and keys (the keys counted at two bytes a character and
 * `ENTRY_OVERHEAD_BYTES` besides, so even empty pages under long keys fill the bound), about
 * twice that with the rows the pages were made from; roughly the least recently used pages
 * go first (an eighth of the bound at a time), whatever `after` values clients send.
 *
 * Recency is kept by moving a used page to the end of the map, but only a page that is not
 * already in its newer half: a `Map` keeps a deleted entry in its hash chain until the
 * table is rebuilt, so moving the group list's first page on every call made each lookup
 * walk thousands of dead copies of it (19 us a call with 10,000 pages kept, 0.5 with 100).
 *
 * @module
 */

import type { StoreChange } from "./store.ts";

/** Default bound of the kept pages' JSON: 16 MiB (about 800 first pages of 500 groups). */
export const DEFAULT_REPLY_CACHE_BYTES = 16 * 1024 * 1024;

/** What a kept page costs besides its JSON and its key: the entry, its maps' entries. */
export const ENTRY_OVERHEAD_BYTES = 256;

/** The pages of the group list. */
export const GROUPS_SCOPE = "groups";

/** The pages of one group's file list. */
export function filesScope(group: string): string {
  return `files\n${group}`;
}

interface Entry {
  scope: string;
  /** When it was last put at the end of the map, in placements. */
  placedAt: number;
  rows: unknown;
  stamp?: readonly number[];
  data?: object;
  /** Its JSON's, its key's and `ENTRY_OVERHEAD_BYTES`. */
  bytes: number;
  /** Its JSON's alone. */
  jsonBytes: number;
}

const encoder = new TextEncoder();

/** Pages kept between writes, with their JSON. One per tracker. */
export class ReplyCache {
  readonly #maxBytes: number;
  readonly #enabled: boolean;
  /** By scope and key, least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #idsByScope = new Map<string, Set<string>>();
  readonly #json = new WeakMap<object, Uint8Array>();
  #bytes = 0;
  #generation = 0;
  /** Pages put at the end of the map so far. */
  #placements = 0;

  /**
   * `enabled`: whether pages may be kept (the store reports every change); when false every
   * `page` call loads and builds afresh.
   */
  constructor(options: { enabled: boolean; maxBytes?: number }) {
    this.#enabled = options.enabled;
    this.#maxBytes = options.maxBytes ?? DEFAULT_REPLY_CACHE_BYTES;
  }

  /** Bytes kept: the pages' JSON, and their keys and entries as counted above. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Pages kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** A write changed what the pages of `change` show: they are dropped. */
  changed(change: StoreChange): void {
    this.#generation++;
    this.#dropScope(change.kind === "groups" ? GROUPS_SCOPE : filesScope(change.group));
  }

  /**
   * The page `key` of `scope`: kept rows (else `load`ed, and kept unless a write came
   * meanwhile) shown through `build`; the shown page is made again only when `stamp` of the
   * rows (what the page shows beyond them, such as live counts) differs from last time.
   */
  async page<R, D extends object>(
    scope: string,
    key: string,
    view: {
      load: () => Promise<R>;
      build: (rows: R) => D;
      stamp?: (rows: R) => readonly number[];
    },
  ): Promise<D> {
    if (!this.#enabled) return view.build(await view.load());
    const id = `${scope}\n\n${key}`;
    let entry = this.#entries.get(id);
    if (entry) {
      // most recently used last, unless already among the newer half
      if (this.#placements - entry.placedAt > this.#entries.size / 2) {
        this.#entries.delete(id);
        this.#entries.set(id, entry);
        entry.placedAt = ++this.#placements;
      }
    } else {
      const generation = this.#generation;
      const rows = await view.load();
      if (generation !== this.#generation) return view.build(rows);
      const bytes = id.length * 2 + ENTRY_OVERHEAD_BYTES;
      entry = { scope, rows, bytes, jsonBytes: 0, placedAt: 0 };
      this.#insert(id, entry);
      this.#bytes += bytes;
    }
    const rows = entry.rows as R;
    const stamp = view.stamp?.(rows);
    if (entry.data === undefined || !sameNumbers(entry.stamp, stamp)) {
      const data = view.build(rows);
      const json = encoder.encode(JSON.stringify(data));
      this.#json.set(data, json);
      entry.data = data;
      entry.stamp = stamp;
      this.#bytes += json.length - entry.jsonBytes;
      entry.bytes += json.length - entry.jsonBytes;
      entry.jsonBytes = json.length;
      this.#evict(id);
    }
    return entry.data as D;
  }

  /** The JSON (UTF-8) of a page this cache returned, or undefined for any other value. */
  jsonOf(data: unknown): Uint8Array | undefined {
    return typeof data === "object" && data !== null ? this.#json.get(data) : undefined;
  }

  #insert(id: string, entry: Entry): void {
    const old = this.#entries.get(id);
    if (old) this.#drop(id, old);
    this.#entries.set(id, entry);
    entry.placedAt = ++this.#placements;
    let ids = this.#idsByScope.get(entry.scope);
    if (!ids) this.#idsByScope.set(entry.scope, ids = new Set());
    ids.add(id);
  }

  /**
   * Over the bound, drops roughly the least recently used pages (never `keep`, just made) to
   * seven eighths of it: a walk from the map's start passes the entries deleted there
   * since the table was last rebuilt, so it is taken once per many pages, not per page.
   */
  #evict(keep: string): void {
    if (this.#bytes <= this.#maxBytes) return;
    const target = this.#maxBytes - this.#maxBytes / 8;
    for (const [id, entry] of this.#entries) {
      if (this.#bytes <= target) return;
      if (id !== keep) this.#drop(id, entry);
    }
  }

  #dropScope(scope: string): void {
    const ids = this.#idsByScope.get(scope);
    if (!ids) return;
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry) this.#drop(id, entry);
    }
  }

  #drop(id: string, entry: Entry): void {
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
    const ids = this.#idsByScope.get(entry.scope);
    ids?.delete(id);
    if (ids?.size === 0) this.#idsByScope.delete(entry.scope);
  }
}

function sameNumbers(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
