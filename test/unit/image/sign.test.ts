/**
 * Signed URLs: the exact payload recipe publishers reproduce, signatures pinned against values
 * computed independently with `openssl dgst -sha256 -hmac`, and every verification outcome.
 */
import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { signaturePayload, signPath, verifySignature } from '../../../src/image/sign.js';

const q = (query: string) => new URLSearchParams(query);

function errorOf(fn: () => unknown): CdnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CdnError) return err;
    throw err;
  }
  throw new Error('expected a CdnError, nothing was thrown');
}

describe('signaturePayload', () => {
  it.each<[string, string, string]>([
    ['photos/cat.jpg', 'w=400&fmt=auto', '/photos/cat.jpg?fmt=auto&w=400'],
    ['photos/cat.jpg', 'fmt=auto&w=400', '/photos/cat.jpg?fmt=auto&w=400'],
    ['photos/cat.jpg', 'fmt=auto&sig=abc&w=400', '/photos/cat.jpg?fmt=auto&w=400'],
    ['photos/cat.jpg', 'sig=abc&sig=def', '/photos/cat.jpg?'],
    ['photos/cat.jpg', '', '/photos/cat.jpg?'],
    // Same key: sorted by value too.
    ['a.png', 'x=2&x=10&x=1', '/a.png?x=1&x=10&x=2'],
    // Decoded (percent and plus), then sorted by code point: "B" < "a" < "é".
    ['a.png', 'x=a%20b&%C3%A9=1&a=c+d&B=0', '/a.png?B=0&a=c d&x=a b&é=1'],
    // Code point order, not UTF-16 unit order: U+FF5E sorts before U+1F600.
    ['a.png', 'k=%F0%9F%98%80&k=%EF%BD%9E', '/a.png?k=～&k=😀'],
    ['a b/ü.png', 'w=400&x=a+b&q=80', '/a b/ü.png?q=80&w=400&x=a b'],
  ])('%j ? %j → %j', (path, query, payload) => {
    expect(signaturePayload(path, q(query))).toBe(payload);
  });
});

describe('signPath', () => {
  // Expected values: printf '%s' PAYLOAD | openssl dgst -sha256 -hmac secret -binary | base64url
  it.each<[string, string, string]>([
    ['photos/cat.jpg', 'w=400&fmt=auto', 'UyHpstnqpMTe8RNO0HTuxOjkHcU72muNsReqkKi2isA'],
    ['photos/cat.jpg', 'fmt=auto&w=400', 'UyHpstnqpMTe8RNO0HTuxOjkHcU72muNsReqkKi2isA'],
    ['photos/cat.jpg', '', 'S2MlLWZ7d1uoIkxTHv8008cST1SexPPdnirY7mC13cE'],
    ['a b/ü.png', 'x=a+b&w=400&q=80', 'hrnpFwFyakU6N4vvmBzIoDAIBad6DmYk3o8mJf_Awyg'],
  ])('%j ? %j → %s', (path, query, sig) => {
    expect(signPath(path, q(query), 'secret')).toBe(sig);
  });
});

describe('verifySignature', () => {
  const path = 'photos/cat.jpg';
  const OLD = 'old-key';
  const NEW = 'new-key';
  const signed = (query: string, key: string) => {
    const params = q(query);
    params.append('sig', signPath(path, params, key));
    return params;
  };

  it.each<[string, URLSearchParams, readonly string[]]>([
    ['round trip', signed('w=400&fmt=auto', NEW), [NEW]],
    ['signed by the old key during rotation', signed('w=400', OLD), [NEW, OLD]],
    ['signed by the new key during rotation', signed('w=400', NEW), [NEW, OLD]],
    ['no parameters but sig', signed('', NEW), [NEW]],
    [
      'reordered parameters',
      q(`w=400&fmt=auto&sig=${signPath(path, q('fmt=auto&w=400'), NEW)}`),
      [NEW],
    ],
    ['sig first', q(`sig=${signPath(path, q('w=400&h=300'), NEW)}&h=300&w=400`), [NEW]],
    ['signing off: no sig needed', q('w=400'), []],
    ['signing off: a bad sig ignored', q('w=400&sig=nonsense'), []],
  ])('accepts: %s', (_name, query, keys) => {
    expect(() => verifySignature(path, query, keys)).not.toThrow();
  });

  const valid = signPath(path, q('fmt=auto&w=400'), NEW);

  it.each<[string, string, string, readonly string[], string, string]>([
    ['missing', path, 'w=400&fmt=auto', [NEW], 'missing_signature',
      'this URL must be signed: the sig parameter is missing'],
    ['given twice', path, `w=400&fmt=auto&sig=${valid}&sig=${valid}`, [NEW], 'missing_signature',
      'sig must be given exactly once, got 2 values'],
    ['tampered parameter', path, `w=800&fmt=auto&sig=${valid}`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['added parameter', path, `w=400&fmt=auto&q=10&sig=${valid}`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['removed parameter', path, `w=400&sig=${valid}`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['other path', 'photos/dog.jpg', `w=400&fmt=auto&sig=${valid}`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['retired key', path, `w=400&fmt=auto&sig=${valid}`, [OLD], 'bad_signature',
      'sig does not match this URL'],
    ['empty sig', path, 'w=400&fmt=auto&sig=', [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['truncated sig', path, `w=400&fmt=auto&sig=${valid.slice(0, -1)}`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['padded sig', path, `w=400&fmt=auto&sig=${valid}%3D`, [NEW], 'bad_signature',
      'sig does not match this URL'],
    ['sig of another case', path, `w=400&fmt=auto&sig=${valid.toLowerCase()}`, [NEW],
      'bad_signature', 'sig does not match this URL'],
    ['multi-byte sig of equal length', path, `w=400&fmt=auto&sig=${'é'.repeat(43)}`, [NEW],
      'bad_signature', 'sig does not match this URL'],
  ])('refuses: %s', (_name, assetPath, query, keys, code, message) => {
    const err = errorOf(() => verifySignature(assetPath, q(query), keys));
    expect([err.code, err.source, err.status, err.field, err.message]).toEqual([
      code,
      'client',
      403,
      'sig',
      message,
    ]);
  });
});
