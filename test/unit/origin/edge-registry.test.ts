import { describe, expect, it } from 'vitest';
import { EdgeRegistry, MAX_ACK_POINTS } from '../../../origin/purge/edge-registry.js';
import { streamParams, streamStart } from '../../../origin/purge/purge-stream.js';
import { httpErrorOf } from '../../../src/errors.js';

function clock(start: number): { now: () => number; set: (t: number) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v) };
}

describe('EdgeRegistry', () => {
  it('knows live edges by their streams, and what each applied since when', () => {
    const c = clock(1000);
    const edges = new EdgeRegistry(c.now);
    const closeA = edges.connect('ams/a', 5);
    c.set(2000);
    edges.connect('fra/b', 0);
    c.set(3000);
    expect(edges.ack('fra/b', 6)).toEqual({ node: 'fra/b', live: true, streams: 1, acked: 6, ackedAt: 3000, connections: 1, lastSeen: 3000 });
    expect(edges.applied(5)).toEqual([
      { node: 'ams/a', live: true, applied: true, at: 1000 },
      { node: 'fra/b', live: true, applied: true, at: 3000 },
    ]);
    expect(edges.applied(6)).toEqual([
      { node: 'ams/a', live: true, applied: false, at: undefined },
      { node: 'fra/b', live: true, applied: true, at: 3000 },
    ]);
    c.set(4000);
    closeA();
    closeA(); // twice is once
    expect(edges.list().map((e) => [e.node, e.live, e.streams, e.lastSeen])).toEqual([
      ['ams/a', false, 0, 4000],
      ['fra/b', true, 1, 3000],
    ]);
  });

  it('takes an older or repeated acknowledgement as no change', () => {
    const c = clock(1000);
    const edges = new EdgeRegistry(c.now);
    edges.ack('ams/a', 7);
    c.set(2000);
    expect(edges.ack('ams/a', 3)).toMatchObject({ acked: 7, ackedAt: 1000 });
    expect(edges.ack('ams/a', 7)).toMatchObject({ acked: 7, ackedAt: 1000 });
    expect(edges.applied(7)[0]!.at).toBe(1000);
  });

  it('counts a reconnect as a connection, and two overlapping streams as one live edge', () => {
    const edges = new EdgeRegistry(() => 0);
    const first = edges.connect('ams/a', 0);
    edges.connect('ams/a', 0);
    first();
    expect(edges.list()).toEqual([{ node: 'ams/a', live: true, streams: 1, acked: 0, ackedAt: undefined, connections: 2, lastSeen: 0 }]);
  });

  it('says "applied, time unknown" once the acknowledgement that covered a purge is no longer kept', () => {
    const c = clock(0);
    const edges = new EdgeRegistry(c.now);
    for (let seq = 1; seq <= MAX_ACK_POINTS + 1; seq++) {
      c.set(seq * 10);
      edges.ack('ams/a', seq);
    }
    expect(edges.applied(1)[0]).toEqual({ node: 'ams/a', live: false, applied: true, at: undefined });
    expect(edges.applied(2)[0]).toEqual({ node: 'ams/a', live: false, applied: true, at: undefined });
    expect(edges.applied(3)[0]!.at).toBe(30);
  });

  it('a wait is complete at once when no edge is live, or every live edge applied it', async () => {
    const edges = new EdgeRegistry(() => 0);
    expect(await edges.waitApplied(9, 10_000)).toEqual({ complete: true, edges: [] });
    edges.connect('ams/a', 9);
    edges.ack('fra/gone', 1); // known, not live: not waited for
    expect(await edges.waitApplied(9, 10_000)).toEqual({
      complete: true,
      edges: [
        { node: 'ams/a', live: true, applied: true, at: 0 },
        { node: 'fra/gone', live: false, applied: false, at: undefined },
      ],
    });
    expect((await edges.waitApplied(10, 0)).complete).toBe(false);
  });

  it('a wait finishes on the acknowledgement that completes it, or when the last laggard leaves', async () => {
    const edges = new EdgeRegistry(() => 0);
    edges.connect('ams/a', 0);
    const closeB = edges.connect('fra/b', 0);
    const waiting = edges.waitApplied(3, 60_000);
    let done = false;
    void waiting.then(() => (done = true));
    edges.ack('ams/a', 3);
    await Promise.resolve();
    expect(done).toBe(false);
    closeB();
    expect((await waiting).complete).toBe(true);
    const second = edges.waitApplied(4, 60_000);
    edges.ack('ams/a', 5);
    expect((await second).complete).toBe(true);
    const third = edges.waitApplied(6, 60_000);
    edges.releaseWaits();
    expect((await third).complete).toBe(false);
  });
});

describe('where a purge stream starts', () => {
  const log = { id: 'aaaaaaaaaaaa', firstSeq: 11, lastSeq: 20 };
  it.each<[string, number, string | undefined, { from: number; reset: string | undefined }]>([
    ['caught up', 20, undefined, { from: 20, reset: undefined }],
    ['behind, within the log', 12, undefined, { from: 12, reset: undefined }],
    ['right before the first retained purge', 10, undefined, { from: 10, reset: undefined }],
    ['behind what compaction kept', 9, undefined, { from: 10, reset: 'compacted' }],
    ['a new edge after compaction', 0, undefined, { from: 10, reset: 'compacted' }],
    ['ahead of the log', 21, undefined, { from: 10, reset: 'ahead' }],
    ['the same log named', 15, 'aaaaaaaaaaaa', { from: 15, reset: undefined }],
    ['another log named', 15, 'bbbbbbbbbbbb', { from: 10, reset: 'other-log' }],
  ])('%s', (_name, after, given, expected) => {
    expect(streamStart(after, given, log)).toEqual(expected);
  });

  it('a new edge on a new log starts at 0 without a reset', () => {
    expect(streamStart(0, undefined, { id: 'aaaaaaaaaaaa', firstSeq: 1, lastSeq: 0 })).toEqual({ from: 0, reset: undefined });
  });

  it('reads after, node and log from the query', () => {
    expect(streamParams(new URLSearchParams('after=42&node=ams/edge-1.a&log=0123456789ab'))).toEqual({ after: 42, node: 'ams/edge-1.a', log: '0123456789ab' });
    expect(streamParams(new URLSearchParams('after=0&node=p_1/n'))).toEqual({ after: 0, node: 'p_1/n', log: undefined });
    const refused = (q: string): unknown => {
      try {
        streamParams(new URLSearchParams(q));
      } catch (err) {
        return httpErrorOf(err).body.field;
      }
      return undefined;
    };
    expect(['after=1.5&node=a/b', 'after=1e3&node=a/b', 'after=&node=a/b', 'after=1&node=a.b/c', 'after=1&node=a/', 'after=1&node=a/b&log=ABCDEF012345'].map(refused)).toEqual(['after', 'after', 'after', 'node', 'node', 'log']);
  });
});
