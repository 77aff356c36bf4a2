/**
 * What a change of an asset purges, decided from its path alone. Logged by the origin itself when
 * an upload makes a new version of an asset (or creates it) and when it is deleted:
 *
 * - its URL, `/photos/cat.jpg` (on every host, with every query: its image variants and cache
 *   busters; for a new asset, the cached 404 of that URL);
 * - for a folder's index, `docs/index.html`, the folder's URLs too: `/docs/` (served from it) and
 *   `/docs` (its redirect, or a cached 404); for the root's `index.html`, `/`;
 * - for the root's `404.html`, the tag NOT_FOUND_TAG, which every content 404 carries: cached 404s
 *   then show the new page (or the JSON 404 again, once it is deleted).
 *
 * Paths are written in the canonical spelling (src/purge/purge-path.ts).
 */
import { assetPathToUrl } from '../../src/asset-path.js';
import { canonicalPath } from '../../src/purge/purge-path.js';
import type { Purge } from '../../src/purge/purge-request.js';
import { INDEX_DOCUMENT, NOT_FOUND_DOCUMENT, NOT_FOUND_TAG } from '../site-paths.js';

export function assetChangePurge(path: string): Purge {
  const urls = [`/${assetPathToUrl(path)}`];
  if (path === INDEX_DOCUMENT) urls.push('/');
  else if (path.endsWith(`/${INDEX_DOCUMENT}`)) {
    const folder = `/${assetPathToUrl(path.slice(0, -INDEX_DOCUMENT.length - 1))}`;
    urls.push(`${folder}/`, folder);
  }
  return {
    urls: urls.map((url) => ({ path: canonicalPath(url) })),
    prefixes: [],
    tags: path === NOT_FOUND_DOCUMENT ? [NOT_FOUND_TAG] : [],
    all: false,
    soft: false,
  };
}
