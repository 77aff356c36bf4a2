/**
 * Lists of a memory store's keys by path and by tag, kept as objects come and go: what the disk
 * store's LMDB index gives a purge (keysUnderPath, keysWithTag), for a store whose objects live in
 * memory. Bounded by the store's own bounds (one set membership per key and tag).
 */
import type { StoredMeta } from './blob-store.js';

export class KeyLists {
  private readonly byPath = new Map<string, Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();

  constructor(private readonly pathOf: (key: string) => string) {}

  add(key: string, meta: StoredMeta): void {
    addTo(this.byPath, this.pathOf(key), key);
    for (const tag of meta.tags ?? []) addTo(this.byTag, tag, key);
  }

  remove(key: string, meta: StoredMeta): void {
    removeFrom(this.byPath, this.pathOf(key), key);
    for (const tag of meta.tags ?? []) removeFrom(this.byTag, tag, key);
  }

  /** Keys whose path starts with `prefix` (one pass over the distinct paths, not over the objects). */
  underPath(prefix: string): string[] {
    const out: string[] = [];
    for (const [path, keys] of this.byPath) if (path.startsWith(prefix)) out.push(...keys);
    return out;
  }

  withTag(tag: string): string[] {
    return [...(this.byTag.get(tag) ?? [])];
  }
}

function addTo(map: Map<string, Set<string>>, name: string, key: string): void {
  let keys = map.get(name);
  if (keys === undefined) map.set(name, (keys = new Set()));
  keys.add(key);
}

function removeFrom(map: Map<string, Set<string>>, name: string, key: string): void {
  const keys = map.get(name);
  if (keys === undefined) return;
  keys.delete(key);
  if (keys.size === 0) map.delete(name);
}
