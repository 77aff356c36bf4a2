/**
 * Which stored responses the edge may compress (mayCompress, which decides whether the store hashes
 * a body) and how that bounds appliesTo (which decides per response): every response appliesTo
 * compresses is one mayCompress has had hashed.
 */
import { describe, expect, it } from 'vitest';
import { EdgeCompression, mayCompress } from '../../../edge/compression.js';
import type { BlobStore } from '../../../src/blob/blob-store.js';
import { silentLogger } from '../../../src/log.js';
import { VaryIndex } from '../../../edge/vary-index.js';

const fields = (pairs: Record<string, string>): Headers => new Headers(pairs);

const CASES: [string, number, Record<string, string>, boolean][] = [
  ['CSS', 200, { 'content-type': 'text/css; charset=utf-8' }, true],
  ['JSON', 200, { 'content-type': 'application/json' }, true],
  ['a +json type', 200, { 'content-type': 'application/vnd.api+json' }, true],
  ['SVG', 200, { 'content-type': 'image/svg+xml' }, true],
  ['text with Content-Encoding: identity', 200, { 'content-type': 'text/html', 'content-encoding': 'identity' }, true],
  ['text with no-transform (a 304 may lift it)', 200, { 'content-type': 'text/css', 'cache-control': 'no-transform' }, true],
  ['JPEG', 200, { 'content-type': 'image/jpeg' }, false],
  ['WebP', 200, { 'content-type': 'image/webp' }, false],
  ['octet-stream', 200, { 'content-type': 'application/octet-stream' }, false],
  ['no Content-Type', 200, {}, false],
  ['gzipped text', 200, { 'content-type': 'text/css', 'content-encoding': 'gzip' }, false],
  ['brotli text', 200, { 'content-type': 'application/javascript', 'content-encoding': 'br' }, false],
  ['a 404 page', 404, { 'content-type': 'text/html' }, false],
  ['a 206', 206, { 'content-type': 'text/css' }, false],
];

describe('mayCompress', () => {
  for (const [name, status, headers, expected] of CASES) {
    it(`${expected ? 'hashes' : 'does not hash'} ${name}`, () => {
      expect(mayCompress(status, fields(headers))).toBe(expected);
    });
  }

  it('is true for every response appliesTo compresses, whatever the options and size', () => {
    const store = {} as BlobStore; // appliesTo reads neither the store nor the clock
    const options = [
      { enabled: true, minBytes: 0, maxBytes: 1 << 30 },
      { enabled: true, minBytes: 1024, maxBytes: 1 << 20 },
      { enabled: false, minBytes: 0, maxBytes: 1 << 30 },
    ];
    let compressed = 0;
    for (const o of options) {
      const compression = new EdgeCompression(o, store, new VaryIndex(), silentLogger(), () => 0);
      for (const [name, status, headers] of CASES) {
        for (const size of [undefined, 0, 500, 5000, 5 << 20]) {
          const applies = compression.appliesTo(status, fields(headers), size);
          if (applies) compressed += 1;
          expect(!applies || mayCompress(status, fields(headers)), `${name}, ${size} bytes`).toBe(true);
        }
      }
    }
    expect(compressed).toBe(5 * 4 + 5); // five compressible cases: at every known size, then only at 5000 bytes
  });
});
