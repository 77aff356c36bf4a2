/**
 * Request header fields as the pipeline reads them: get, has and iteration. A WHATWG `Headers`
 * already is one; `nodeRequestHeaders` adapts Node's parsed `IncomingMessage.headers` (names
 * already lower-cased, repeated fields joined) without building a `Headers` object per request,
 * which on a cache hit costs more than the rest of the lookup.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface RequestHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

export function nodeRequestHeaders(raw: IncomingHttpHeaders): RequestHeaders {
  const value = (v: string | string[] | undefined): string | null => (v === undefined ? null : Array.isArray(v) ? v.join(', ') : v);
  return {
    get: (name) => value(raw[name.toLowerCase()]),
    has: (name) => raw[name.toLowerCase()] !== undefined,
    *[Symbol.iterator]() {
      for (const key of Object.keys(raw)) {
        const v = value(raw[key]);
        if (v !== null) yield [key, v];
      }
    },
  };
}
