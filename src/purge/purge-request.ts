/**
 * A purge request, `{"urls":[…],"prefixes":[…],"tags":[…],"all":false,"soft":false}`: its
 * validation into a `Purge`, the same at the origin (`POST /_cdn/purge`, logged and sent to every
 * edge) and at an edge (its own `POST /_cdn/purge`). Pure; every refusal is a 400 CdnError whose
 * message names the field and what was expected.
 *
 * - A URL is a path (`/photos/cat.jpg`: under every host an edge serves) or an absolute http(s)
 *   URL (`https://cdn.example/photos/cat.jpg`: that host only). Its query is dropped: a URL purge
 *   takes every query of the path (`/a.jpg` purges `/a.jpg?w=400` and `/a.jpg?v=3`).
 * - A prefix is written the same way and takes everything under that path, segment by segment:
 *   `/photos` and `/photos/` purge `/photos`, `/photos/` and `/photos/…`, not `/photoshop.png`.
 *   A prefix has no query.
 * - A tag matches objects whose response carried it in `Surrogate-Key` or `Cache-Groups` (RFC 9875).
 * - `all` empties every cache; `soft` marks what matches stale instead of removing it.
 *
 * Paths are kept in their canonical spelling (purge-path.ts); duplicates are dropped, so a purge
 * names each target once.
 */
import { clientError, type CdnError } from '../errors.js';
import { normalizeHost } from '../http/cache-key.js';
import { canonicalPath } from './purge-path.js';

/** A URL or prefix of a purge: a canonical path (no query), on one host or (host absent) on every host. */
export interface PurgeTarget {
  /** Normalised host (`cdn.example`, `cdn.example:8443`) as in cache keys; absent: every host. */
  host?: string;
  /** Canonical path starting with `/`; for a prefix, without a trailing `/` unless it is `/`. */
  path: string;
}

export interface Purge {
  urls: PurgeTarget[];
  prefixes: PurgeTarget[];
  tags: string[];
  all: boolean;
  soft: boolean;
}

export interface PurgeLimits {
  /** Most urls + prefixes + tags in one request. */
  maxEntries: number;
}

/** Longest URL, prefix or tag as given, in characters. */
export const MAX_URL_LENGTH = 2048;
export const MAX_TAG_LENGTH = 256;
/** Printable ASCII without leading or trailing space: a Surrogate-Key tag, or a Cache-Groups string. */
const TAG = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const FIELDS = ['urls', 'prefixes', 'tags', 'all', 'soft'] as const;
const EXAMPLE = '{"urls":["/photos/cat.jpg"]}';

/** Parse the body of a purge request (bytes as received). */
export function parsePurgeBody(body: string, limits: PurgeLimits): Purge {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw invalid('invalid_json', 'body', `the body is not valid JSON; expected an object such as ${EXAMPLE}`);
  }
  return parsePurge(value, limits);
}

/** Validate a parsed purge request. */
export function parsePurge(value: unknown, limits: PurgeLimits): Purge {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('invalid_purge', 'body', `the body must be a JSON object such as ${EXAMPLE}`);
  }
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw invalid('invalid_purge', key, `unknown field ${JSON.stringify(key.slice(0, 64))}; expected ${FIELDS.join(', ')}`);
    }
  }
  const urls = stringList(raw, 'urls');
  const prefixes = stringList(raw, 'prefixes');
  const tags = stringList(raw, 'tags');
  const all = flag(raw, 'all');
  const soft = flag(raw, 'soft');
  const count = urls.length + prefixes.length + tags.length;
  if (count > limits.maxEntries) {
    throw invalid('too_many_entries', 'body', `a purge may hold at most ${limits.maxEntries} urls, prefixes and tags together, got ${count}: split it`);
  }
  if (count === 0 && !all) {
    throw invalid('empty_purge', 'body', 'nothing to purge: give urls, prefixes or tags, or "all": true');
  }
  return {
    urls: unique(urls.map((u, i) => purgeTarget(u, `urls[${i}]`, 'url'))),
    prefixes: unique(prefixes.map((p, i) => purgeTarget(p, `prefixes[${i}]`, 'prefix'))),
    tags: [...new Set(tags.map((t, i) => checkTag(t, `tags[${i}]`)))],
    all,
    soft,
  };
}

/**
 * A URL or prefix as given → its target. A path must start with one `/`; an absolute URL must be
 * http(s) with a host and no user name; a prefix has no query.
 */
export function purgeTarget(given: string, field: string, kind: 'url' | 'prefix'): PurgeTarget {
  if (given.length > MAX_URL_LENGTH) throw invalid('invalid_purge', field, `${field}: longer than ${MAX_URL_LENGTH} characters`);
  // Control characters and spaces have no place in a URL; the URL parser would quietly drop some.
  if (/[\x00-\x20\x7f]/.test(given)) throw invalid('invalid_purge', field, `${field}: ${JSON.stringify(given.slice(0, 200))} holds a space or control character: percent-encode it`);
  let url: URL;
  let host: string | undefined;
  if (given.startsWith('/') && !given.startsWith('//')) {
    url = new URL(given, 'http://purge.invalid');
  } else if (/^https?:\/\/[^/]/i.test(given)) {
    try {
      url = new URL(given);
    } catch {
      throw notAUrl(given, field, kind);
    }
    if (url.username !== '' || url.password !== '') throw invalid('invalid_purge', field, `${field}: ${JSON.stringify(given.slice(0, 200))} holds a user name: give the host alone`);
    host = normalizeHost(url.host);
  } else {
    throw notAUrl(given, field, kind);
  }
  if (kind === 'prefix' && (url.search !== '' || given.includes('?'))) {
    throw invalid('invalid_purge', field, `${field}: ${JSON.stringify(given.slice(0, 200))}: a prefix is a path, without a query`);
  }
  let path = canonicalPath(url.pathname);
  if (kind === 'prefix' && path.length > 1) path = path.replace(/\/+$/, '') || '/';
  return host === undefined ? { path } : { host, path };
}

function notAUrl(given: string, field: string, kind: 'url' | 'prefix'): CdnError {
  return invalid('invalid_purge', field, `${field}: ${JSON.stringify(given.slice(0, 200))} is neither a path starting with / nor an http(s) URL; a ${kind} looks like /photos/${kind === 'url' ? 'cat.jpg' : ''} or https://cdn.example/photos/${kind === 'url' ? 'cat.jpg' : ''}`);
}

function checkTag(tag: string, field: string): string {
  if (tag.length > MAX_TAG_LENGTH || !TAG.test(tag)) {
    throw invalid('invalid_purge', field, `${field}: ${JSON.stringify(tag.slice(0, 200))} is not a tag: 1–${MAX_TAG_LENGTH} printable ASCII characters, not starting or ending with a space`);
  }
  return tag;
}

function stringList(raw: Record<string, unknown>, field: 'urls' | 'prefixes' | 'tags'): string[] {
  const value = raw[field];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalid('invalid_purge', field, `${field} must be an array of strings`);
  }
  return value as string[];
}

function flag(raw: Record<string, unknown>, field: 'all' | 'soft'): boolean {
  const value = raw[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid('invalid_purge', field, `${field} must be true or false`);
  return value;
}

function unique(targets: PurgeTarget[]): PurgeTarget[] {
  const seen = new Set<string>();
  return targets.filter((t) => {
    const key = `${t.host ?? ''} ${t.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function invalid(code: string, field: string, message: string): CdnError {
  return clientError(code, message, { field });
}
