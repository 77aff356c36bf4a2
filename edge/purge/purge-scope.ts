/**
 * What a purge means in the edge's own terms, as pure functions: the folder URLs an `index.html`
 * purge also takes (the edge serves `/docs/` from `docs/index.html` and redirects `/docs`), and
 * whether a stored key or a fetch under way is taken, read from its key (host, path, query) and,
 * for tags, from the response's fields.
 */
import { canonicalPath } from '../../src/purge/purge-path.js';
import { purgeMatcher, type PurgeMatcher } from '../../src/purge/purge-match.js';
import type { Purge, PurgeTarget } from '../../src/purge/purge-request.js';
import { responseTags } from '../../src/purge/response-tags.js';
import { hostOfKey, pathOfKey, splitStoredKey } from '../cache-keys.js';
import { headersFromPairs } from '../stored-view.js';

const INDEX = '/index.html';

/**
 * The purge with the folder URLs of every `…/index.html` URL added (`/docs/index.html` also takes
 * `/docs/` and `/docs`; `/index.html` takes `/`), on the same host; each URL once. The origin logs
 * these itself for uploads; a purge through the API or an edge's own endpoint names the file alone.
 */
export function withFolderUrls(purge: Purge): Purge {
  const urls: PurgeTarget[] = [];
  const seen = new Set<string>();
  const add = (t: PurgeTarget): void => {
    const id = `${t.host ?? ''} ${t.path}`;
    if (seen.has(id)) return;
    seen.add(id);
    urls.push(t);
  };
  for (const url of purge.urls) {
    add(url);
    if (!url.path.endsWith(INDEX)) continue;
    const folder = url.path.slice(0, -INDEX.length);
    const forms = folder === '' ? ['/'] : [`${folder}/`, folder];
    for (const path of forms) add(url.host === undefined ? { path: canonicalPath(path) } : { host: url.host, path: canonicalPath(path) });
  }
  return urls.length === purge.urls.length ? purge : { ...purge, urls };
}

/** Whether a stored key's URL is taken by the purge's URLs and prefixes (its tags aside). */
export function keyMatcher(purge: Purge): (key: string) => boolean {
  const byPath: PurgeMatcher = purgeMatcher({ ...purge, tags: [] });
  return (key) => {
    const primary = splitStoredKey(key).primary;
    return byPath({ host: hostOfKey(primary), target: pathOfKey(primary), tags: [] });
  };
}

/**
 * Whether a fetch under way for `key` is taken: by its URL, by `all`, or by a tag of its response
 * when its fields are in (`fields`); one whose fields are not in yet may carry any tag, so a purge
 * by tag takes it.
 */
export function flightMatcher(purge: Purge): (key: string, fields: readonly [string, string][] | undefined) => boolean {
  if (purge.all) return () => true;
  const byKey = keyMatcher(purge);
  const tags = new Set(purge.tags);
  return (key, fields) => {
    if (byKey(key)) return true;
    if (tags.size === 0) return false;
    if (fields === undefined) return true;
    return (responseTags(headersFromPairs(fields)) ?? []).some((t) => tags.has(t));
  };
}
