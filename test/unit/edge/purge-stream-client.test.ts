import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, reconnectDelay, retryAfterSeconds, silenceLimit, type AttemptEnd } from '../../../edge/purge/reconnect.js';
import { readStreamEvent } from '../../../edge/purge/stream-events.js';

describe('reconnect delay', () => {
  const failed: AttemptEnd = { kind: 'failed' };
  it.each([
    // attempt, end, random, expected ms: half fixed, half random, doubling up to 30 s
    [0, failed, 0, 125],
    [0, failed, 0.999, 250],
    [1, failed, 0.5, 375],
    [2, failed, 0, 500],
    [6, failed, 0, 8_000],
    [7, failed, 0, 15_000],
    [8, failed, 0, 15_000],
    [8, failed, 0.999, 29_985],
    [1000, failed, 0.5, 22_500],
    [0, { kind: 'refused', status: 503 }, 0, 125],
    [0, { kind: 'refused', status: 503, retryAfterSec: 5 }, 0, 5_000],
    [0, { kind: 'refused', status: 503, retryAfterSec: 3600 }, 0, 30_000],
    [3, { kind: 'refused', status: 503, retryAfterSec: 1 }, 0, 1_000],
    [0, { kind: 'refused', status: 401 }, 0, 30_000],
    [0, { kind: 'refused', status: 403 }, 0.5, 30_000],
    [0, { kind: 'refused', status: 404 }, 0, 30_000],
    [0, { kind: 'refused', status: 400 }, 0, 30_000],
    [0, { kind: 'refused', status: 500 }, 0, 125],
  ] as [number, AttemptEnd, number, number][])('attempt %i after %j with random %d waits %i ms', (attempt, end, random, expected) => {
    expect(reconnectDelay(attempt, end, random)).toBe(expected);
  });

  it('takes its own bounds', () => {
    expect(reconnectDelay(10, { kind: 'failed' }, 0, { baseMs: 10, maxMs: 100 })).toBe(50);
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 250, maxMs: 30_000 });
  });

  it('lets a stream be silent for three heartbeats', () => {
    expect(silenceLimit(15_000)).toBe(45_000);
    expect(silenceLimit(200)).toBe(600);
  });

  it.each([
    ['5', 5],
    [' 10 ', 10],
    [['2', '9'], 2],
    ['Wed, 21 Oct 2015 07:28:00 GMT', undefined],
    ['-1', undefined],
    [undefined, undefined],
  ] as [string | string[] | undefined, number | undefined][])('Retry-After %j is %j s', (value, expected) => {
    expect(retryAfterSeconds(value)).toBe(expected);
  });
});

describe('purge stream events', () => {
  const log = '3f9a1c0b7d2e';
  it.each([
    ['hello', { format: 1, log, firstSeq: 1, lastSeq: 42, heartbeatMs: 15000 }, { kind: 'hello', format: 1, log, firstSeq: 1, lastSeq: 42, heartbeatMs: 15000 }],
    ['reset', { reason: 'compacted', log, firstSeq: 31, lastSeq: 42 }, { kind: 'reset', reason: 'compacted', log, firstSeq: 31, lastSeq: 42 }],
    ['heartbeat', { lastSeq: 43, time: 1767225615000 }, { kind: 'heartbeat', lastSeq: 43, time: 1767225615000 }],
    [
      'purge',
      { seq: 43, id: `${log}-43`, time: 1767225600000, source: 'api', soft: false, all: false, urls: [{ path: '/a.jpg' }, { host: 'cdn.example', path: '/b.jpg' }], prefixes: [{ path: '/photos' }], tags: ['cats'] },
      { kind: 'purge', seq: 43, id: `${log}-43`, time: 1767225600000, purge: { urls: [{ path: '/a.jpg' }, { host: 'cdn.example', path: '/b.jpg' }], prefixes: [{ path: '/photos' }], tags: ['cats'], all: false, soft: false } },
    ],
  ])('reads %s', (event, data, expected) => {
    expect(readStreamEvent(event, JSON.stringify(data))).toEqual(expected);
  });

  it('ignores events it does not know', () => {
    expect(readStreamEvent('message', '{}')).toBeUndefined();
    expect(readStreamEvent('future', 'not even JSON')).toBeUndefined();
  });

  it.each([
    ['hello', 'nope', 'hello: data is not JSON'],
    ['hello', '[1]', 'hello: data is not an object'],
    ['hello', JSON.stringify({ format: 2, log, firstSeq: 1, lastSeq: 1, heartbeatMs: 1 }), 'hello: format 2 is not one this edge reads (1)'],
    ['hello', JSON.stringify({ format: 1, log: 'XYZ', firstSeq: 1, lastSeq: 1, heartbeatMs: 1 }), 'hello: log, firstSeq, lastSeq or heartbeatMs missing or wrong'],
    ['hello', JSON.stringify({ format: 1, log, firstSeq: 1, lastSeq: 1, heartbeatMs: 0 }), 'hello: log, firstSeq, lastSeq or heartbeatMs missing or wrong'],
    ['reset', JSON.stringify({ reason: 'bored', log, firstSeq: 1, lastSeq: 1 }), 'reset: reason, log, firstSeq or lastSeq missing or wrong'],
    ['heartbeat', JSON.stringify({ lastSeq: -1, time: 1 }), 'heartbeat: lastSeq or time missing or wrong'],
    ['purge', JSON.stringify({ seq: 0, id: 'x', time: 1 }), 'purge: seq, id or time missing or wrong'],
    ['purge', JSON.stringify({ seq: 5, id: 'x', time: 1, soft: 'no', all: false }), 'purge 5: soft and all must be true or false'],
    ['purge', JSON.stringify({ seq: 5, id: 'x', time: 1, soft: false, all: false, urls: [{ path: 'a.jpg' }], prefixes: [], tags: [] }), 'purge 5: urls and prefixes must be lists of {path} or {host, path}'],
    ['purge', JSON.stringify({ seq: 5, id: 'x', time: 1, soft: false, all: false, urls: [], prefixes: [{ host: 7, path: '/' }], tags: [] }), 'purge 5: urls and prefixes must be lists of {path} or {host, path}'],
    ['purge', JSON.stringify({ seq: 5, id: 'x', time: 1, soft: false, all: false, urls: [], prefixes: [], tags: [3] }), 'purge 5: tags must be a list of strings'],
  ])('refuses %s %s', (event, data, message) => {
    expect(readStreamEvent(event, data)).toBe(message);
  });
});
