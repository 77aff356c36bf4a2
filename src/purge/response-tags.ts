/**
 * The tags a purge by tag finds a stored response by: the members of its `Surrogate-Key` field
 * (space-separated, as the origin and other CDNs send them) and of its `Cache-Groups` field
 * (RFC 9875 §2: a Structured Fields List of Strings). Pure; the edge stores the result with the
 * object (StoredMeta.tags) when it stores or refreshes it, so its disk index lists objects by tag.
 *
 * Bounded: at most MAX_RESPONSE_TAGS tags, each a valid purge tag (1–256 printable ASCII
 * characters, purge-request.ts); anything else could never be purged by tag and is not kept.
 */
import type { HeaderGetter } from '../http/headers.js';
import { parseSfList } from '../http/structured-fields.js';
import { MAX_TAG_LENGTH } from './purge-request.js';

/** Tags kept per response. RFC 9875 §2 asks for at least 32 groups; Surrogate-Key has no limit of its own. */
export const MAX_RESPONSE_TAGS = 128;

/** A tag as the purge API accepts one (the same rule as purge-request.ts). */
const TAG = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The tags of a response, first those of Surrogate-Key, then those of Cache-Groups, each once, in
 * the order given; undefined when it carries none.
 */
export function responseTags(headers: HeaderGetter): string[] | undefined {
  const tags = new Set<string>();
  const add = (tag: string): void => {
    if (tags.size < MAX_RESPONSE_TAGS && tag.length <= MAX_TAG_LENGTH && TAG.test(tag)) tags.add(tag);
  };
  for (const tag of surrogateKeys(headers.get('surrogate-key'))) add(tag);
  for (const tag of cacheGroups(headers.get('cache-groups'))) add(tag);
  return tags.size === 0 ? undefined : [...tags];
}

/** Surrogate-Key: tags separated by spaces (several fields combine as a list, so commas separate too). */
export function surrogateKeys(value: string | null | undefined): string[] {
  if (value === null || value === undefined) return [];
  return value.split(/[ \t,]+/).filter((t) => t !== '');
}

/**
 * Cache-Groups (RFC 9875 §2): a List whose members are Strings. A field that does not parse is
 * ignored as a whole (RFC 9651 §4.2); members that are not Strings are ignored, and so are
 * parameters (reserved for future use).
 */
export function cacheGroups(value: string | null | undefined): string[] {
  if (value === null || value === undefined) return [];
  const members = parseSfList(value);
  if (members === undefined) return [];
  return members.flatMap((m) => (m.type === 'string' ? [m.value] : []));
}
