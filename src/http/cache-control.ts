/**
 * Cache-Control (RFC 9111 §5.2) and the targeted CDN-Cache-Control (RFC 9213) parsed into one typed
 * object, plus the rule that picks which of the two governs a response at a CDN. Unknown
 * directives are ignored (RFC 9111 §5.2.3). Conflicts resolve to the most restrictive reading:
 *
 * - A repeated numeric directive keeps its smallest value (max-age, s-maxage, stale-*, max-stale)
 *   or its largest (min-fresh): RFC 9111 §4.2.1 "the most restrictive directive should be honored".
 * - An invalid max-age or s-maxage (not delta-seconds) counts as 0, i.e. stale (RFC 9111 §4.2.1).
 *   An invalid value of a directive that only grants leeway (stale-while-revalidate,
 *   stale-if-error, max-stale, min-fresh) drops that directive.
 * - `no-cache` / `private` with field names are kept apart from their unqualified forms.
 */
import type { HeaderGetter } from './headers.js';
import { type SfBareItem, parseSfDictionary } from './structured-fields.js';

export interface CacheControl {
  /** Seconds (RFC 9111 §5.2.1.1 request, §5.2.2.1 response). */
  maxAge?: number;
  /** Seconds; shared caches only (§5.2.2.10). */
  sMaxage?: number;
  /** Unqualified no-cache (§5.2.1.4 request, §5.2.2.4 response). */
  noCache: boolean;
  /** Field names (lower case) of a qualified `no-cache="a, b"` (§5.2.2.4). */
  noCacheFields: string[];
  noStore: boolean;
  /** Unqualified private (§5.2.2.7). */
  private: boolean;
  /** Field names (lower case) of a qualified `private="a, b"` (§5.2.2.7). */
  privateFields: string[];
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  mustUnderstand: boolean;
  noTransform: boolean;
  /** RFC 8246. */
  immutable: boolean;
  /** Seconds (RFC 5861 §3). */
  staleWhileRevalidate?: number;
  /** Seconds (RFC 5861 §4). */
  staleIfError?: number;
  /** Seconds; request only (§5.2.1.3). */
  minFresh?: number;
  /** Seconds, `Infinity` for a bare `max-stale`; request only (§5.2.1.2). */
  maxStale?: number;
  /** Request only (§5.2.1.7). */
  onlyIfCached: boolean;
}

/** RFC 9111 §1.2.2: the value a cache uses for delta-seconds it cannot represent. */
export const DELTA_SECONDS_MAX = 2 ** 31;

/**
 * Parses delta-seconds (RFC 9111 §1.2.2): 1*DIGIT, saturating at 2^31. `undefined` if invalid.
 */
export function parseDeltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Math.min(Number(value), DELTA_SECONDS_MAX);
}

/** A directive name (lower-cased) and its argument (`undefined` when it has none). */
export type Directive = [name: string, value: string | undefined];

export function emptyCacheControl(): CacheControl {
  return {
    noCache: false,
    noCacheFields: [],
    noStore: false,
    private: false,
    privateFields: [],
    public: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    mustUnderstand: false,
    noTransform: false,
    immutable: false,
    onlyIfCached: false,
  };
}

function fieldNames(value: string): string[] {
  return value
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '');
}

function smaller(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

/** Folds directives into a CacheControl with the conflict rules in the module comment. */
export function interpretDirectives(directives: Iterable<Directive>): CacheControl {
  const cc = emptyCacheControl();
  for (const [name, value] of directives) {
    const seconds = parseDeltaSeconds(value);
    switch (name) {
      case 'max-age':
        cc.maxAge = smaller(cc.maxAge, seconds ?? 0);
        break;
      case 's-maxage':
        cc.sMaxage = smaller(cc.sMaxage, seconds ?? 0);
        break;
      case 'stale-while-revalidate':
        if (seconds !== undefined) cc.staleWhileRevalidate = smaller(cc.staleWhileRevalidate, seconds);
        break;
      case 'stale-if-error':
        if (seconds !== undefined) cc.staleIfError = smaller(cc.staleIfError, seconds);
        break;
      case 'min-fresh':
        if (seconds !== undefined) cc.minFresh = Math.max(cc.minFresh ?? 0, seconds);
        break;
      case 'max-stale':
        if (value === undefined) cc.maxStale = smaller(cc.maxStale, Infinity);
        else if (seconds !== undefined) cc.maxStale = smaller(cc.maxStale, seconds);
        break;
      case 'no-cache':
        if (value === undefined) cc.noCache = true;
        else cc.noCacheFields.push(...fieldNames(value));
        break;
      case 'private':
        if (value === undefined) cc.private = true;
        else cc.privateFields.push(...fieldNames(value));
        break;
      case 'no-store':
        cc.noStore = true;
        break;
      case 'public':
        cc.public = true;
        break;
      case 'must-revalidate':
        cc.mustRevalidate = true;
        break;
      case 'proxy-revalidate':
        cc.proxyRevalidate = true;
        break;
      case 'must-understand':
        cc.mustUnderstand = true;
        break;
      case 'no-transform':
        cc.noTransform = true;
        break;
      case 'immutable':
        cc.immutable = true;
        break;
      case 'only-if-cached':
        cc.onlyIfCached = true;
        break;
      default:
        break; // RFC 9111 §5.2.3: unrecognised directives are ignored
    }
  }
  cc.noCacheFields = [...new Set(cc.noCacheFields)];
  cc.privateFields = [...new Set(cc.privateFields)];
  return cc;
}

/**
 * Splits a Cache-Control value into directives (RFC 9111 §5.2):
 * `#( token [ "=" ( token / quoted-string ) ] )`. Names are case-insensitive; both argument forms
 * are accepted for every directive (§5.2: "recipients ought to accept both forms"); commas inside
 * a quoted-string do not split; elements without a valid name are skipped.
 */
export function splitDirectives(value: string): Directive[] {
  const out: Directive[] = [];
  for (const element of listElements(value)) {
    const eq = element.indexOf('=');
    const name = (eq < 0 ? element : element.slice(0, eq)).trim().toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) continue;
    if (eq < 0) {
      out.push([name, undefined]);
      continue;
    }
    out.push([name, unquote(element.slice(eq + 1).trim())]);
  }
  return out;
}

/** Directives whose argument is delta-seconds (RFC 9111 §1.2.2, §5.2; RFC 5861 §3, §4). */
const DELTA_SECONDS_DIRECTIVES = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error']);
const CACHE_DIRECTIVE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:=([!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\]|\\.)*"))?$/;

/**
 * What is wrong with a response Cache-Control value someone sends to be stored and served (a
 * publisher's upload), or undefined when every element is `token [ "=" ( token / quoted-string ) ]`
 * (RFC 9111 §5.2; empty list elements allowed, RFC 9110 §5.6.1) and the lifetimes are
 * delta-seconds. Unknown directives are extensions and pass (§5.2.3).
 */
export function cacheControlProblem(value: string): string | undefined {
  for (const element of listElements(value)) {
    if (element === '') continue;
    const m = CACHE_DIRECTIVE.exec(element);
    if (m === null) return `${JSON.stringify(element)} is not a directive (name, or name=value)`;
    const name = m[1]!.toLowerCase();
    if (DELTA_SECONDS_DIRECTIVES.has(name) && !/^(\d+|"\d+")$/.test(m[2] ?? '')) return `${name} needs a number of seconds, got ${JSON.stringify(element)}`;
  }
  return undefined;
}

/** The elements of a comma-separated list (RFC 9110 §5.6.1), trimmed; commas inside a quoted-string do not split. */
function listElements(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    let j = i;
    let quoted = false;
    while (j < value.length && (quoted || value[j] !== ',')) {
      if (value[j] === '\\' && quoted) j += 1;
      else if (value[j] === '"') quoted = !quoted;
      j += 1;
    }
    out.push(value.slice(i, j).trim());
    i = j + 1;
  }
  return out;
}

// RFC 9110 §5.6.4: quoted-string with quoted-pair.
function unquote(raw: string): string {
  if (!raw.startsWith('"')) return raw;
  const end = raw.length > 1 && raw.endsWith('"') ? raw.length - 1 : raw.length;
  return raw.slice(1, end).replace(/\\(.)/g, '$1');
}

/**
 * Parsed values by field value. A cache sees the same few Cache-Control strings on every hit, so
 * each is parsed once; results are frozen (shared between callers). Bounded: cleared when full.
 */
const MEMO_MAX = 1024;
const parsedMemo = new Map<string, CacheControl>();
const targetedMemo = new Map<string, CacheControl | undefined>();

function memo<T>(table: Map<string, T>, value: string, parse: (v: string) => T): T {
  if (table.has(value)) return table.get(value) as T;
  const parsed = parse(value);
  if (parsed !== undefined) deepFreeze(parsed as object);
  if (table.size >= MEMO_MAX) table.clear();
  table.set(value, parsed);
  return parsed;
}

function deepFreeze(cc: object): void {
  for (const v of Object.values(cc)) if (Array.isArray(v)) Object.freeze(v);
  Object.freeze(cc);
}

/** Parses a Cache-Control field value (request or response); absent means no directives. */
export function parseCacheControl(value: string | null | undefined): CacheControl {
  if (!value) return interpretDirectives([]);
  return memo(parsedMemo, value, (v) => interpretDirectives(splitDirectives(v)));
}

/**
 * The value type RFC 9213 §2.1 infers for each response directive in a targeted field: an Integer
 * of delta-seconds (`max-age=60`), Boolean true alone (`no-store`), or Boolean true or a String of
 * field names (`private`, `no-cache="set-cookie"`). `?0` says the directive is absent.
 */
const TARGETED_TYPES: ReadonlyMap<string, 'seconds' | 'flag' | 'flag-or-fields'> = new Map([
  ['max-age', 'seconds'],
  ['s-maxage', 'seconds'],
  ['stale-while-revalidate', 'seconds'],
  ['stale-if-error', 'seconds'],
  ['no-store', 'flag'],
  ['public', 'flag'],
  ['must-revalidate', 'flag'],
  ['proxy-revalidate', 'flag'],
  ['must-understand', 'flag'],
  ['no-transform', 'flag'],
  ['immutable', 'flag'],
  ['no-cache', 'flag-or-fields'],
  ['private', 'flag-or-fields'],
]);

/**
 * A targeted field's member as a directive: `[name, argument]`, `null` when `?0` says it is absent,
 * `undefined` when its value has the wrong type. Unknown directives (and the request-only ones,
 * which mean nothing in a response) are ignored whatever their value (RFC 9111 §5.2.3).
 */
function targetedDirective(name: string, item: SfBareItem): Directive | null | undefined {
  const expected = TARGETED_TYPES.get(name);
  if (expected === undefined) return null;
  if (item.type === 'boolean') return expected === 'seconds' ? undefined : item.value ? [name, undefined] : null;
  if (expected === 'seconds') return item.type === 'integer' && item.value >= 0 ? [name, String(item.value)] : undefined;
  if (expected === 'flag-or-fields' && item.type === 'string') return [name, item.value];
  return undefined;
}

/**
 * Parses a targeted field such as CDN-Cache-Control (RFC 9213 §2.1): a Structured Field
 * Dictionary whose members are response directives, their parameters ignored. Returns `undefined`
 * (the field is ignored, and Cache-Control governs, RFC 9213 §2.1–2.2) when it is absent or empty,
 * is not a valid Dictionary (no falling back to the Cache-Control syntax: `Max-Age=60` is invalid),
 * or gives a known directive a value of the wrong type: `max-age="10"`, `max-age=10.5`,
 * `max-age=10.0` (a Decimal), `max-age=-1`, `max-age=@1` (a Date), `no-store=1`, `private=set-cookie`
 * (a Token, where RFC 9213 §2.1 wants a String). A field that fails is ignored as a whole: reading
 * only its valid members could keep its lifetime while dropping the `private` beside it.
 */
export function parseTargetedCacheControl(value: string | null | undefined): CacheControl | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  return memo(targetedMemo, value, parseTargetedUncached);
}

function parseTargetedUncached(value: string): CacheControl | undefined {
  const dict = parseSfDictionary(value);
  if (dict === undefined) return undefined;
  const directives: Directive[] = [];
  for (const [name, item] of dict) {
    const directive = targetedDirective(name, item);
    if (directive === undefined) return undefined;
    if (directive !== null) directives.push(directive);
  }
  return interpretDirectives(directives);
}

/** The directives that govern a stored response at this cache, and where they came from. */
export interface EffectiveCacheControl {
  cc: CacheControl;
  /** True when CDN-Cache-Control was used and Cache-Control / Expires must be ignored. */
  targeted: boolean;
}

/**
 * RFC 9213 §2.2: a CDN uses the first valid, non-empty targeted field on its list
 * (CDN-Cache-Control) and then ignores Cache-Control and Expires entirely; otherwise it uses
 * Cache-Control.
 */
export function effectiveCacheControl(headers: HeaderGetter): EffectiveCacheControl {
  const targeted = parseTargetedCacheControl(headers.get('cdn-cache-control'));
  if (targeted !== undefined) return { cc: targeted, targeted: true };
  return { cc: parseCacheControl(headers.get('cache-control')), targeted: false };
}

/**
 * Request directives (RFC 9111 §5.2.1), including `Pragma: no-cache` which counts as
 * `Cache-Control: no-cache` when the request has no Cache-Control (RFC 9111 §5.4).
 */
export function requestCacheControl(headers: HeaderGetter): CacheControl {
  const value = headers.get('cache-control');
  if (value !== null && value !== undefined) return parseCacheControl(value);
  const cc = emptyCacheControl();
  const pragma = headers.get('pragma');
  if (pragma && splitDirectives(pragma).some(([name, arg]) => name === 'no-cache' && arg === undefined)) {
    cc.noCache = true;
  }
  return cc;
}
