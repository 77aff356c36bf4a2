/**
 * Which requests the edge answers itself: the reserved prefix `/_cdn/` (DESIGN.md) is never
 * content, and nothing under it is ever sent upstream, however the client spelled it.
 */
import { RESERVED_PREFIX } from '../src/asset-path.js';

const CONTROL_PREFIX = `/${RESERVED_PREFIX}/`;

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * The control path (`/_cdn` or under it) a request names, or undefined for content. Decided on
 * the path the upstream would be sent, not on the characters received: `/x/../_cdn/metrics`,
 * `/%2e%2e/_cdn/…`, `/%5Fcdn/…`, `//_cdn/…` and `http://host/_cdn/…` all name the reserved prefix,
 * and forwarding them would hand the origin's publisher API to anyone who can reach an edge. A
 * target that cannot change under normalisation (no `%`, `\`, `/.`) is judged as it is.
 */
export function controlPathOf(target: string, req: { readonly url: URL }): string | undefined {
  const raw = pathOf(target);
  if (raw.startsWith(CONTROL_PREFIX)) return raw;
  let path = raw;
  if (!raw.startsWith('/') || raw.includes('%') || raw.includes('\\') || raw.includes('/.') || raw.startsWith('//')) {
    let normal: string;
    try {
      normal = req.url.pathname;
    } catch {
      return undefined; // not a URL: the pipeline answers its 400
    }
    path = normal.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replace(/\/{2,}/g, '/');
  }
  return isControlPath(path) ? path : undefined;
}

/** `/_cdn` and every path under it, spelled as received or normalised. */
export function isControlPath(path: string): boolean {
  return path === CONTROL_PREFIX.slice(0, -1) || path.startsWith(CONTROL_PREFIX);
}
