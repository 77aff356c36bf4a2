/**
 * What the edge stores for purges to find: the tags of Surrogate-Key and Cache-Groups (RFC 9875)
 * with each object, refreshed by a 304, and the disk index listing objects by canonical path
 * whatever their host, query or spelling.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import type { TieredBlobStore } from '../../../src/blob/tiered-blob-store.js';
import { startTestEdge, type TestEdge } from '../../support/edge.js';
import { scriptedUpstream, type ScriptedUpstream } from '../../support/scripted-upstream.js';

describe('tags and paths the edge stores for purges', () => {
  let upstream: ScriptedUpstream;
  let edge: TestEdge;
  let disk: DiskBlobStore;

  beforeAll(async () => {
    upstream = await scriptedUpstream();
    edge = await startTestEdge(upstream.url);
    disk = (edge.server.store as TieredBlobStore).disk;
  });
  afterAll(async () => {
    await edge.destroy();
    await upstream.close();
  });

  it('stores the members of Surrogate-Key and Cache-Groups as the object\'s tags', async () => {
    upstream.set('/tagged.css', { headers: { 'cache-control': 'max-age=60', 'surrogate-key': '/tagged.css site-v1', 'cache-groups': '"styles", "site-v1", tok' }, body: 'a{}' });
    expect((await edge.get('/tagged.css', { host: 'cdn.example' })).status).toBe(200);
    expect(disk.keysWithTag('styles')).toEqual(['cdn.example/tagged.css']);
    expect(disk.keysWithTag('site-v1')).toEqual(['cdn.example/tagged.css']);
    expect(disk.keysWithTag('/tagged.css')).toEqual(['cdn.example/tagged.css']);
    expect(disk.keysWithTag('tok')).toEqual([]);
  });

  it('takes the tags a 304 brings', async () => {
    upstream.set('/retag.txt', { headers: { 'cache-control': 'max-age=1', etag: '"r1"', 'surrogate-key': 'old' }, body: 'same' });
    await edge.get('/retag.txt', { host: 'cdn.example' });
    expect(disk.keysWithTag('old')).toEqual(['cdn.example/retag.txt']);
    upstream.set('/retag.txt', { headers: { 'cache-control': 'max-age=1', etag: '"r1"', 'surrogate-key': 'new', 'cache-groups': '"g"' }, body: 'same' });
    edge.clock.advance(2_000);
    const again = await edge.get('/retag.txt', { host: 'cdn.example' });
    expect(again.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304');
    expect(disk.keysWithTag('old')).toEqual([]);
    expect(disk.keysWithTag('new')).toEqual(['cdn.example/retag.txt']);
    expect(disk.keysWithTag('g')).toEqual(['cdn.example/retag.txt']);
  });

  it('lists every host, query and spelling of a path under its canonical path', async () => {
    for (const target of ['/a%40b.jpg?v=3', '/a@b.jpg']) upstream.set(target, { headers: { 'cache-control': 'max-age=60' }, body: target });
    await edge.get('/a%40b.jpg?v=3', { host: 'one.example' });
    await edge.get('/a@b.jpg', { host: 'two.example:8080' });
    expect(disk.keysUnderPath('/a@b.jpg').sort()).toEqual(['one.example/a%40b.jpg?v=3', 'two.example:8080/a@b.jpg']);
  });
});
