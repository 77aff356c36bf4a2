/**
 * Which cached objects a purge takes: a pure predicate built once per purge and asked of every
 * candidate object (the edge walks its index with it). What each kind means is in
 * purge-request.ts; in short, for an object stored under host `h` and target `/p?q` with tags `T`:
 *
 * - `all`: every object;
 * - a URL `{host?, path}`: canonical(`/p`) equals `path` (any query), and `host` is absent or `h`;
 * - a prefix `{host?, path}`: canonical(`/p`) is `path` or lies under it (`path + '/…'`; the
 *   prefix `/` takes every path), and `host` is absent or `h`;
 * - a tag: one of `T` equals it (Surrogate-Key tags and Cache-Groups members, case-sensitive).
 *
 * The object's path is brought to the canonical spelling (purge-path.ts) before comparing, so
 * `/a@b.jpg` and `/a%40b.jpg` are both taken by a purge of either.
 */
import { canonicalPath, pathWithoutQuery } from './purge-path.js';
import type { Purge, PurgeTarget } from './purge-request.js';

/** A cached object as the matcher sees it. */
export interface PurgeCandidate {
  /** The host of its cache key (normalised: lower case, no default port). */
  host: string;
  /** The path of its cache key, with or without the query (`/photos/cat.jpg?w=400`). */
  target: string;
  /** Its tags: Surrogate-Key tags and Cache-Groups members of the stored response. */
  tags: Iterable<string>;
}

export type PurgeMatcher = (candidate: PurgeCandidate) => boolean;

export function purgeMatcher(purge: Purge): PurgeMatcher {
  if (purge.all) return () => true;
  const urls = byPath(purge.urls);
  const prefixes = purge.prefixes;
  const tags = new Set(purge.tags);
  return (candidate) => {
    if (tags.size > 0) {
      for (const tag of candidate.tags) if (tags.has(tag)) return true;
    }
    if (urls.size === 0 && prefixes.length === 0) return false;
    const path = canonicalPath(pathWithoutQuery(candidate.target));
    const hosts = urls.get(path);
    if (hosts !== undefined && (hosts.has(ANY_HOST) || hosts.has(candidate.host))) return true;
    return prefixes.some((p) => (p.host === undefined || p.host === candidate.host) && isUnder(path, p.path));
  };
}

/** Whether canonical `path` is `prefix` or below it, segment by segment. */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f);
}

const ANY_HOST = '';

function byPath(targets: readonly PurgeTarget[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const t of targets) {
    let hosts = map.get(t.path);
    if (hosts === undefined) map.set(t.path, (hosts = new Set()));
    hosts.add(t.host ?? ANY_HOST);
  }
  return map;
}
