import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../../edge/purge/sse-parser.js';

const STREAM = 'retry: 1000\n\nevent: hello\ndata: {"log":"a"}\n\nid: 43\nevent: purge\ndata: {"seq":43}\n\n: a comment\nevent: heartbeat\ndata: {"lastSeq":43}\n\n';
const EVENTS: SseEvent[] = [
  { event: 'hello', data: '{"log":"a"}', lastEventId: '' },
  { event: 'purge', data: '{"seq":43}', lastEventId: '43' },
  { event: 'heartbeat', data: '{"lastSeq":43}', lastEventId: '43' },
];

/** Feed `text` cut at the given offsets; every event the parser gave. */
function feed(text: string, cuts: number[]): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    events.push(...parser.push(text.slice(at, cut)));
    at = cut;
  }
  return { events, parser };
}

describe('SSE parser (HTML §9.2.6)', () => {
  it('reads the purge stream whole', () => {
    const { events, parser } = feed(STREAM, []);
    expect(events).toEqual(EVENTS);
    expect(parser.retryMs).toBe(1000);
  });

  it('gives the same events however the text is cut, one character at a time included', () => {
    expect(feed(STREAM, Array.from({ length: STREAM.length }, (_, i) => i)).events).toEqual(EVENTS);
    for (let cut = 0; cut <= STREAM.length; cut++) expect(feed(STREAM, [cut]).events).toEqual(EVENTS);
  });

  it.each([
    ['CRLF line ends', 'event: a\r\ndata: x\r\n\r\n', [{ event: 'a', data: 'x', lastEventId: '' }]],
    ['CR line ends', 'event: a\rdata: x\r\r', [{ event: 'a', data: 'x', lastEventId: '' }]],
    ['data lines join with LF', 'data: one\ndata:two\ndata\n\n', [{ event: 'message', data: 'one\ntwo\n', lastEventId: '' }]],
    ['no space after the colon', 'event:a\ndata:x\n\n', [{ event: 'a', data: 'x', lastEventId: '' }]],
    ['only one leading space is removed', 'data:  x\n\n', [{ event: 'message', data: ' x', lastEventId: '' }]],
    ['an event without data is not dispatched', 'event: empty\n\ndata: y\n\n', [{ event: 'message', data: 'y', lastEventId: '' }]],
    ['unknown fields are ignored', 'foo: bar\ndata: z\n\n', [{ event: 'message', data: 'z', lastEventId: '' }]],
    ['an unfinished event waits for its blank line', 'data: w\n', []],
    ['an id with NUL is ignored', 'id: a\0b\ndata: q\n\n', [{ event: 'message', data: 'q', lastEventId: '' }]],
  ])('%s', (_name, text, expected) => {
    expect(feed(text, []).events).toEqual(expected);
  });

  it('takes a CRLF cut between its CR and its LF as one line end', () => {
    expect(feed('data: a\r\n\r\n', [8]).events).toEqual([{ event: 'message', data: 'a', lastEventId: '' }]);
    expect(feed('data: a\r\n\r\n', [8, 10]).events).toEqual([{ event: 'message', data: 'a', lastEventId: '' }]);
  });

  it('ignores a retry that is not digits', () => {
    expect(feed('retry: 1s\n\n', []).parser.retryMs).toBeUndefined();
  });

  it('fails on a line past its bound', () => {
    const parser = new SseParser(100);
    expect(() => parser.push('data: ' + 'x'.repeat(200))).toThrow(/longer than 100/);
  });
});
