import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { cacheKey } from '../../../src/http/cache-key.js';
import { CODING_SEPARATOR, hostOfKey, imageQueryNormalizer, KeyMemo, pathOfKey, plainPrimaryKey, plainTargetPath, primaryKey, purgePathOfKey, splitStoredKey, upstreamPath, VARY_SEPARATOR, variantKey } from '../../../edge/cache-keys.js';
import { requestUrl } from '../../../edge/app.js';
import { VaryIndex } from '../../../edge/vary-index.js';
import { FlightTable, type FlightOutcome } from '../../../edge/flights.js';

const normalize = imageQueryNormalizer({ maxOutputDimension: 8192 });
const key = (host: string, url: string): string => primaryKey(host, new URL(url, 'http://x'), normalize);

describe('primary keys', () => {
  it.each([
    ['cdn.example', '/a/b.jpg', 'cdn.example/a/b.jpg'],
    ['CDN.Example:443', '/a/b.jpg', 'cdn.example/a/b.jpg'],
    ['cdn.example:8080', '/a/b.jpg', 'cdn.example:8080/a/b.jpg'],
    ['cdn.example', '/a/b.jpg?v=2&a=1', 'cdn.example/a/b.jpg?a=1&v=2'],
    ['cdn.example', '/p.jpg?fmt=auto&w=400', 'cdn.example/p.jpg?fmt=auto&w=400'],
    ['cdn.example', '/p.jpg?w=400&fmt=auto', 'cdn.example/p.jpg?fmt=auto&w=400'],
    ['cdn.example', '/p.jpg?w=200&dpr=2', 'cdn.example/p.jpg?w=400'],
    ['cdn.example', '/p.jpg?w=400&fit=cover&h=300', 'cdn.example/p.jpg?h=300&w=400'],
    ['cdn.example', '/p.jpg?w=400&sig=abc', 'cdn.example/p.jpg?sig=abc&w=400'],
    ['cdn.example', '/a%7eb.css', 'cdn.example/a~b.css'],
    ['cdn.example', '/s?term=a+b', 'cdn.example/s?term=a%2Bb'],
    ['cdn.example', '/s?term=a%2Bb', 'cdn.example/s?term=a%2Bb'],
    ['cdn.example', '/s?term=a%20b', 'cdn.example/s?term=a%20b'],
  ])('%s %s → %s', (host, url, want) => {
    expect(key(host, url)).toBe(want);
  });

  it.each(['/a/b.jpg', '/a/b.jpg?', '/A%2fB/./c/../d.css', '/%E2%82%AC.txt', '/a%7eb.css', '//x//y'])('a target without a query (%s) gets the key cacheKey makes with an empty one', (target) => {
    const url = new URL(target, 'http://x');
    expect(primaryKey('CDN.Example:80', url, normalize)).toBe(cacheKey('CDN.Example:80', url.pathname, new URLSearchParams(), normalize));
  });

  it('refuses bad image parameters with a 400 naming them', () => {
    try {
      key('cdn.example', '/p.jpg?w=0');
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(CdnError);
      expect((err as CdnError).field).toBe('w');
      expect((err as CdnError).status).toBe(400);
    }
  });
});

describe('plain targets (keyed without parsing a URL)', () => {
  const plain = ['/a/b.jpg', '/', '/a/', "/-._~!$&'()*+,;=:@/x", '/cpu/1-0-measured/123-2048.bin', '/a.b/c..d', '/UPPER/Case.CSS'];
  const notPlain = ['/a%7eb.css', '/a/./b', '/a/../b', '/.well-known/x', '/a/.', '//x', '/a//b', '/a?x=1', '/a?', '/a#f', '/a b', '/a"b', '/a<b>', '/a`b', '/a{b}', '/a\\b', '/café', 'http://h/a', '*', ''];

  it.each(plain)('%s is its own path, key path and upstream path', (target) => {
    expect(plainTargetPath(target)).toBe(target);
    for (const host of ['CDN.Example:80', 'cdn.example:8080', '[::1]:8443', '']) {
      const url = requestUrl(target, host);
      expect(url.pathname + url.search).toBe(target);
      expect(plainPrimaryKey(host, target)).toBe(primaryKey(host, url, normalize));
      expect(upstreamPath({ target, headers: new Headers(host === '' ? {} : { host }), url })).toBe(target);
    }
  });

  it.each(notPlain)('%s is parsed as a URL', (target) => {
    expect(plainTargetPath(target)).toBeUndefined();
    expect(plainPrimaryKey('cdn.example', target)).toBeUndefined();
  });

  it('the upstream path of any other target is the parsed URL’s', () => {
    for (const target of notPlain.filter((t) => t.startsWith('/'))) {
      const url = requestUrl(target, 'cdn.example');
      expect(upstreamPath({ target, headers: new Headers({ host: 'cdn.example' }), url })).toBe(url.pathname + url.search);
    }
  });

  it('refuses a Host that is not a host and a port with the same 400 as URL parsing', () => {
    let fromUrl: unknown;
    try {
      requestUrl('/a.jpg', 'h/p');
    } catch (err) {
      fromUrl = err;
    }
    expect(() => plainPrimaryKey('h/p', '/a.jpg')).toThrow((fromUrl as Error).message);
    expect((fromUrl as CdnError).status).toBe(400);
    const req = { target: '/a.jpg', headers: new Headers({ host: 'h?x' }), get url(): URL { return requestUrl('/a.jpg', 'h?x'); } };
    expect(() => upstreamPath(req)).toThrow(CdnError);
  });
});

describe('variant keys', () => {
  const accept = (value: string) => new Headers({ accept: value });
  it('holds the accept class, never the raw header', () => {
    const chrome = variantKey('h/p.jpg', ['accept'], accept('image/avif,image/webp,image/apng,*/*;q=0.8'));
    const firefox = variantKey('h/p.jpg', ['accept'], accept('image/avif,image/webp,*/*'));
    expect(chrome).toBe(`h/p.jpg${VARY_SEPARATOR}accept=avif`);
    expect(firefox).toBe(chrome);
    expect(variantKey('h/p.jpg', ['accept'], accept('*/*'))).toBe(`h/p.jpg${VARY_SEPARATOR}accept=other`);
  });

  it.each([
    ['h/p.jpg', { primary: 'h/p.jpg', fields: undefined, coding: undefined }],
    [`h/p.jpg${VARY_SEPARATOR}accept=webp`, { primary: 'h/p.jpg', fields: ['accept'], coding: undefined }],
    [`h/s.css${CODING_SEPARATOR}br`, { primary: 'h/s.css', fields: undefined, coding: 'br' }],
    [`h/s.css${VARY_SEPARATOR}accept=other&x-a=1${CODING_SEPARATOR}gzip`, { primary: 'h/s.css', fields: ['accept', 'x-a'], coding: 'gzip' }],
  ])('splits %j', (stored, want) => {
    expect(splitStoredKey(stored)).toEqual(want);
  });

  it('finds the path of a key', () => {
    expect(pathOfKey('cdn.example/a/b.jpg?w=1')).toBe('/a/b.jpg?w=1');
    expect(pathOfKey('cdn.example')).toBe('/');
  });

  it.each([
    ['cdn.example/a/b.jpg', 'cdn.example', '/a/b.jpg'],
    ['cdn.example:8443/a.jpg?fmt=auto&w=400', 'cdn.example:8443', '/a.jpg'],
    [`cdn.example/p.jpg?w=400${VARY_SEPARATOR}accept=avif`, 'cdn.example', '/p.jpg'],
    [`cdn.example/s.css${CODING_SEPARATOR}br`, 'cdn.example', '/s.css'],
    ['h/a%40b.jpg?v=3', 'h', '/a@b.jpg'],
    ['h/caf%C3%A9', 'h', '/caf%C3%A9'],
    ['/no-host.jpg', '', '/no-host.jpg'],
  ])('lists %j under host %j and purge path %j', (key, host, path) => {
    expect(hostOfKey(splitStoredKey(key).primary)).toBe(host);
    expect(purgePathOfKey(key)).toBe(path);
  });
});

describe('vary index', () => {
  it('is rebuilt from stored keys and forgets a URL with its last key', () => {
    const index = VaryIndex.fromKeys([`h/p.jpg${VARY_SEPARATOR}accept=avif`, `h/p.jpg${VARY_SEPARATOR}accept=webp`, 'h/a.css', `h/a.css${CODING_SEPARATOR}br`]);
    expect(index.fields('h/p.jpg')).toEqual(['accept']);
    expect(index.fields('h/a.css')).toBeUndefined();
    expect(index.keysFor('h/a.css').sort()).toEqual(['h/a.css', `h/a.css${CODING_SEPARATOR}br`].sort());
    index.remove(`h/p.jpg${VARY_SEPARATOR}accept=avif`);
    expect(index.fields('h/p.jpg')).toEqual(['accept']);
    index.remove(`h/p.jpg${VARY_SEPARATOR}accept=webp`);
    expect(index.fields('h/p.jpg')).toBeUndefined();
    expect(index.keysFor('h/p.jpg')).toEqual([]);
  });
});

describe('vary index over a store that lists keys by prefix', () => {
  /** A sorted key list, like the disk store's index; counts its scans. */
  function indexedStore(keys: string[]) {
    const sorted = [...keys].sort();
    const store = {
      scans: 0,
      keys: () => {
        throw new Error('an indexed store is never listed whole');
      },
      keysWithPrefix(prefix: string, limit = Infinity) {
        store.scans += 1;
        return sorted.filter((k) => k.startsWith(prefix)).slice(0, limit);
      },
    };
    return store;
  }

  it('reads nothing at start, looks fields up once per primary, and lists a URL\'s keys from the store', () => {
    const store = indexedStore([`h/p.jpg${VARY_SEPARATOR}accept=avif`, `h/p.jpg${VARY_SEPARATOR}accept=webp`, 'h/a.css', `h/a.css${CODING_SEPARATOR}br`, 'h/a.css2']);
    const index = new VaryIndex(store);
    expect(store.scans).toBe(0);
    expect(index.fields('h/p.jpg')).toEqual(['accept']);
    expect(index.fields('h/p.jpg')).toEqual(['accept']);
    expect(index.fields('h/a.css')).toBeUndefined();
    expect(index.fields('h/a.css')).toBeUndefined();
    expect(store.scans).toBe(2);
    expect(index.keysFor('h/a.css').sort()).toEqual(['h/a.css', `h/a.css${CODING_SEPARATOR}br`].sort());
    // A key stored by this process counts at once; a removed variant makes the next lookup ask again.
    index.add(`h/n.jpg${VARY_SEPARATOR}accept=other`);
    expect(index.fields('h/n.jpg')).toEqual(['accept']);
    index.remove(`h/p.jpg${VARY_SEPARATOR}accept=avif`);
    expect(index.fields('h/p.jpg')).toEqual(['accept']);
    expect(store.scans).toBe(4);
    index.clearFields('h/p.jpg');
    expect(index.fields('h/p.jpg')).toBeUndefined();
  });
});

describe('flight table', () => {
  function deferred<T>() {
    let resolve!: (v: T) => void;
    const promise = new Promise<T>((r) => (resolve = r));
    return { promise, resolve };
  }
  const notShared: FlightOutcome = { kind: 'uncacheable', reason: 'private', take: () => undefined };

  it('lets followers join until the bound, and forgets a flight when it is over', async () => {
    const table = new FlightTable(10, 2);
    const run = deferred<{ outcome: FlightOutcome; done: Promise<unknown> }>();
    const leader = table.start('k', () => run.promise);
    expect(leader).toBeDefined();
    expect(table.start('k', () => run.promise)).toBeUndefined();
    expect(table.join('k')).toBe(leader);
    expect(table.join('k')).toBe(leader);
    expect(table.join('k')).toBeUndefined();
    run.resolve({ outcome: notShared, done: Promise.resolve() });
    expect(await leader!.outcome).toBe(notShared);
    await leader!.done;
    expect(table.has('k')).toBe(false);
  });

  it('refuses new flights past its bound', () => {
    const table = new FlightTable(1, 10);
    const never = new Promise<{ outcome: FlightOutcome; done: Promise<unknown> }>(() => undefined);
    expect(table.start('a', () => never)).toBeDefined();
    expect(table.start('b', () => never)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  it('takes no followers once the response is in, and lets a newer flight replace a delivered one', async () => {
    const table = new FlightTable(10, 10);
    const shared = { kind: 'shared', key: 'k' } as unknown as FlightOutcome;
    const first = deferred<{ outcome: FlightOutcome; done: Promise<unknown> }>();
    const firstDone = deferred<void>();
    const old = table.start('k', () => first.promise)!;
    // Waiting for its headers: joinable, and not replaceable.
    expect(table.start('k', () => first.promise, true)).toBeUndefined();
    expect(table.join('k')).toBe(old);
    first.resolve({ outcome: shared, done: firstDone.promise });
    await old.outcome;
    expect(old.delivered).toBe(shared);
    expect(table.join('k')).toBeUndefined();
    expect(table.start('k', () => first.promise)).toBeUndefined();
    const second = deferred<{ outcome: FlightOutcome; done: Promise<unknown> }>();
    const newer = table.start('k', () => second.promise, true)!;
    expect(table.get('k')).toBe(newer);
    // The older copy may still be kept until the newer flight has an answer of its own.
    expect(old.superseded).toBe(false);
    second.resolve({ outcome: notShared, done: Promise.resolve() });
    await newer.outcome;
    expect(old.superseded).toBe(true);
    // The replaced flight is still under way: settled() waits for it.
    let settled = false;
    const waiting = table.settled().then(() => (settled = true));
    await Promise.resolve();
    expect([settled, table.size]).toEqual([false, 1]);
    firstDone.resolve();
    await waiting;
    expect([table.size, table.has('k')]).toEqual([0, false]);
  });

  it('passes a failure to every waiter and removes the flight', async () => {
    const table = new FlightTable(10, 10);
    const flight = table.start('k', () => Promise.reject(new Error('upstream down')))!;
    await expect(flight.outcome).rejects.toThrow('upstream down');
    await flight.done;
    expect(table.has('k')).toBe(false);
  });
});

describe('KeyMemo', () => {
  it('keeps keys in use across generations and stays bounded', () => {
    const memo = new KeyMemo(3);
    memo.set('a.example', '/hot', 'H');
    for (let i = 0; i < 100; i++) {
      // Targets on the same host and on hosts of their own count alike.
      memo.set(i % 3 === 0 ? `h${i}.example` : 'a.example', `/cold-${i}`, `C${i}`);
      // A key looked up now and then survives however many others pass through.
      if (i % 2 === 0) expect(memo.get('a.example', '/hot')).toBe('H');
      expect(memo.size).toBeLessThanOrEqual(6);
    }
    expect(memo.get('a.example', '/hot')).toBe('H');
    expect(memo.get('a.example', '/cold-98')).toBe('C98');
    expect(memo.get('h99.example', '/cold-99')).toBe('C99');
    expect(memo.get('a.example', '/cold-1')).toBeUndefined();
  });

  it('keeps the same target on different hosts apart, and counts a target set twice once', () => {
    const memo = new KeyMemo(10);
    memo.set('a.example', '/x', 'A');
    memo.set('b.example', '/x', 'B');
    memo.set('a.example', '/x', 'A2');
    expect([memo.get('a.example', '/x'), memo.get('b.example', '/x'), memo.get('c.example', '/x'), memo.size]).toEqual(['A2', 'B', undefined, 2]);
  });
});
