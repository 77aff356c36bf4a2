/**
 * The one spelling of a URL path that purges are written and matched in, shared by the origin
 * (which logs purges) and the edge (which matches them against its cache keys).
 *
 * One file can be asked for under several spellings: `/a@b.jpg` and `/a%40b.jpg`, `/café` and
 * `/caf%C3%A9` are the same asset to the origin (it decodes once, src/asset-path.ts) but two keys
 * at the edge (src/http/cache-key.ts normalises only unreserved characters, RFC 3986 §6.2.2.2).
 * A purge must take both, so purge paths and cache-key paths are both brought to the canonical
 * form below before they are compared:
 *
 * - percent-escapes that decode to UTF-8 are decoded, except `%2F` (`/`) and `%25` (`%`), which
 *   stay escaped (decoding them would change where the segments are, or what a later decode sees);
 * - then every character but the unreserved ones, the sub-delims, `:`, `@` and `/` (RFC 3986 §3.3
 *   `pchar`) is percent-encoded as UTF-8 with upper-case hex; escapes keep upper-case hex.
 *
 * So `canonicalPath` is idempotent, and two spellings of one decoded path give one string.
 */

/** RFC 3986 §3.3: pchar without pct-encoded, plus the `/` between segments. */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const ESCAPE_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const LONE_SURROGATE = /^[\uD800-\uDFFF]$/;

/** A path of pchars and no escapes: canonical as it is (one scan, where the walk below tests each character). */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/** The canonical spelling of a URL path (no query), as described above. */
export function canonicalPath(path: string): string {
  if (PLAIN.test(path)) return path;
  let out = '';
  let at = 0;
  for (const m of path.matchAll(ESCAPE_RUN)) {
    out += encodeOutside(path.slice(at, m.index));
    out += decodeRun(m[0]);
    at = m.index + m[0].length;
  }
  return out + encodeOutside(path.slice(at));
}

/** The path of a request target or cache-key path: everything before `?` (and `#`). */
export function pathWithoutQuery(target: string): string {
  const q = target.search(/[?#]/);
  return q < 0 ? target : target.slice(0, q);
}

/**
 * A run of escapes: `%2F` and `%25` stay (upper-cased) and split the run; each remaining piece is
 * decoded as UTF-8 when it is valid and re-encoded in the canonical way, else kept escaped.
 */
function decodeRun(run: string): string {
  return run
    .toUpperCase()
    .split(/(%2F|%25)/)
    .map((piece) => {
      if (piece === '%2F' || piece === '%25' || piece === '') return piece;
      try {
        return encodeOutside(decodeURIComponent(piece));
      } catch {
        return piece; // not UTF-8: bytes that have no other spelling
      }
    })
    .join('');
}

/** Percent-encode every character of decoded text that is not a pchar (a `%` too). */
function encodeOutside(text: string): string {
  let out = '';
  for (const ch of text) out += PCHAR.test(ch) ? ch : encodeUtf8(ch);
  return out;
}

function encodeUtf8(ch: string): string {
  // A lone surrogate cannot be encoded as UTF-8: its replacement character is.
  const bytes = Buffer.from(LONE_SURROGATE.test(ch) ? '\ufffd' : ch, 'utf8');
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}
