import { describe, expect, it } from 'vitest';
import { planSync, storedHeaders, type LocalFile, type StoredAsset } from '../../../src/cli/sync-plan.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function local(path: string, size = 10, sha256 = SHA_A): LocalFile {
  return { file: `/dir/${path}`, path, size, sha256 };
}
function stored(path: string, extra: Partial<StoredAsset> = {}): StoredAsset {
  return { path, size: 10, sha256: SHA_A, cacheControl: null, tags: [], ...extra };
}

describe('storedHeaders: what the origin stores for --cache-control and --tag', () => {
  it.each<[string | undefined, string[], { cacheControl: string | undefined; tags: string[] }]>([
    [undefined, [], { cacheControl: undefined, tags: [] }],
    ['  public, max-age=60 ', [], { cacheControl: 'public, max-age=60', tags: [] }],
    ['   ', [], { cacheControl: undefined, tags: [] }],
    [undefined, ['site', 'v2'], { cacheControl: undefined, tags: ['site', 'v2'] }],
    [undefined, ['a b', 'b,c', 'a'], { cacheControl: undefined, tags: ['a', 'b', 'c'] }],
  ])('%j %j', (cc, tags, expected) => {
    expect(storedHeaders(cc, tags)).toEqual(expected);
  });
});

describe('planSync', () => {
  const none = { cacheControl: undefined, tags: [] };

  it('uploads what is new or changed, leaves what is the same', () => {
    const plan = planSync(
      [local('new.txt'), local('same.txt'), local('bigger.txt', 11), local('edited.txt', 10, SHA_B)],
      [stored('same.txt'), stored('bigger.txt'), stored('edited.txt'), stored('stale.txt')],
      none,
      false,
    );
    expect(plan).toEqual({
      upload: [
        { local: local('new.txt'), reason: 'new' },
        { local: local('bigger.txt', 11), reason: 'content' },
        { local: local('edited.txt', 10, SHA_B), reason: 'content' },
      ],
      unchanged: [local('same.txt')],
      remove: [],
    });
  });

  it('with --delete, removes what is stored but not here', () => {
    const plan = planSync([local('a')], [stored('a'), stored('b'), stored('c/d')], none, true);
    expect(plan.remove).toEqual(['b', 'c/d']);
    expect(plan.unchanged).toEqual([local('a')]);
  });

  it.each<[string, Partial<StoredAsset>, { cacheControl: string | undefined; tags: string[] }, 'headers' | undefined]>([
    ['the same Cache-Control and tags', { cacheControl: 'max-age=60', tags: ['x', 'y'] }, { cacheControl: 'max-age=60', tags: ['x', 'y'] }, undefined],
    ['a new Cache-Control', { cacheControl: null }, { cacheControl: 'max-age=60', tags: [] }, 'headers'],
    ['a Cache-Control dropped', { cacheControl: 'max-age=60' }, { cacheControl: undefined, tags: [] }, 'headers'],
    ['another tag', { tags: ['x'] }, { cacheControl: undefined, tags: ['y'] }, 'headers'],
    ['tags in another order', { tags: ['x', 'y'] }, { cacheControl: undefined, tags: ['y', 'x'] }, 'headers'],
  ])('same bytes, %s', (_name, storedExtra, headers, reason) => {
    const plan = planSync([local('a')], [stored('a', storedExtra)], headers, false);
    expect(plan.upload.map((u) => u.reason)[0]).toBe(reason);
  });
});
