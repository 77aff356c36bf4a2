import { describe, expect, it } from 'vitest';
import { clfTime, combinedEscape, isoTime, jsonString, lineFormatter, loggedFields, type AccessRecord } from '../../../src/access-log/line.js';

const T = Date.UTC(2026, 11, 5, 1, 29, 0, 123);

/** A hit from the quick front, as the edge records it. */
const hit: AccessRecord = {
  time: T,
  clientAddress: '203.0.113.7',
  clientPort: 53422,
  method: 'GET',
  host: 'cdn.example',
  target: '/photos/cat.jpg?w=400',
  protocol: 'HTTP/1.1',
  status: 200,
  bytes: 1024,
  durationMs: 0.0417,
  ttfbMs: 0.0417,
  outcome: 'hit',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
  referer: 'https://site.example/gallery',
};

/** A miss: upstream asked, its status and time. */
const miss: AccessRecord = { ...hit, time: T + 2000, target: '/a.css', status: 200, bytes: 51200, durationMs: 14.25, ttfbMs: 12.5, outcome: 'miss', upstreamStatus: 200, upstreamMs: 11.9876, userAgent: undefined, referer: undefined };

describe('JSON lines', () => {
  const json = lineFormatter('json', { pop: 'ams', node: 'ams-1' });

  it('writes every field of a hit, in a fixed order, on one line', () => {
    expect(json(hit)).toBe(
      '{"time":"2026-12-05T01:29:00.123Z","pop":"ams","node":"ams-1","client":"203.0.113.7","clientPort":53422,"method":"GET","host":"cdn.example",' +
        '"target":"/photos/cat.jpg?w=400","protocol":"HTTP/1.1","status":200,"bytes":1024,"durationMs":0.042,"ttfbMs":0.042,"outcome":"hit",' +
        '"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","referer":"https://site.example/gallery"}\n',
    );
  });

  it('adds upstream status and time when upstream was asked, and leaves out fields the request did not send', () => {
    expect(json(miss)).toBe(
      '{"time":"2026-12-05T01:29:02.123Z","pop":"ams","node":"ams-1","client":"203.0.113.7","clientPort":53422,"method":"GET","host":"cdn.example",' +
        '"target":"/a.css","protocol":"HTTP/1.1","status":200,"bytes":51200,"durationMs":14.250,"ttfbMs":12.500,"outcome":"miss","upstreamStatus":200,"upstreamMs":11.988}\n',
    );
  });

  it("writes the origin's phases, and no constant fields when none are given", () => {
    const origin = lineFormatter('json');
    const line = origin({ ...miss, host: undefined, clientAddress: undefined, clientPort: undefined, upstreamStatus: undefined, upstreamMs: undefined, outcome: 'variant-generated', phases: { queueMs: 0, transformMs: 35.5 } });
    expect(line).toBe('{"time":"2026-12-05T01:29:02.123Z","method":"GET","target":"/a.css","protocol":"HTTP/1.1","status":200,"bytes":51200,"durationMs":14.250,"ttfbMs":12.500,"outcome":"variant-generated","phases":{"queueMs":0.000,"transformMs":35.500}}\n');
  });

  it('writes an IPv4-mapped IPv6 client as IPv4, other IPv6 addresses as they are', () => {
    expect(json({ ...hit, clientAddress: '::ffff:127.0.0.1' })).toContain('"client":"127.0.0.1","clientPort":53422');
    expect(json({ ...hit, clientAddress: '::1' })).toContain('"client":"::1"');
  });

  it('escapes quotes, backslashes, control characters and every byte past ASCII, so a line is one JSON record', () => {
    const hostile = { ...hit, target: '/a"b\\c?x=\x01\x7f', userAgent: 'evil"\r\n{"status":500}', referer: 'caf\xc3\xa9\t' };
    const line = json(hostile);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(line).toContain('"target":"/a\\"b\\\\c?x=\\u0001\\u007f"');
    expect(line).toContain('"userAgent":"evil\\"\\r\\n{\\"status\\":500}"');
    expect(line).toContain('"referer":"caf\\u00c3\\u00a9\\t"');
    expect(/^[\x20-\x7e]*\n$/.test(line)).toBe(true);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed['target']).toBe(hostile.target);
    expect(parsed['userAgent']).toBe(hostile.userAgent);
    expect(parsed['referer']).toBe(hostile.referer);
    expect(parsed['status']).toBe(200);
  });

  it('writes times in ms with three decimals, never negative or NaN', () => {
    expect(json({ ...hit, durationMs: -0.001, ttfbMs: 0 })).toContain('"durationMs":0.000,"ttfbMs":0.000,');
    expect(json({ ...hit, durationMs: 1.0000001, ttfbMs: 2 / 3 })).toContain('"durationMs":1.000,"ttfbMs":0.667,');
    expect(json({ ...hit, durationMs: 12345.6789, ttfbMs: NaN })).toContain('"durationMs":12345.679,"ttfbMs":0.000,');
  });

  it('jsonString is JSON.stringify for ASCII text', () => {
    for (const s of ['', 'plain', 'a"b', 'back\\slash', 'tab\there', '\x00\x1f', '~!@#$%^&*()']) expect(jsonString(s)).toBe(JSON.stringify(s));
  });
});

describe('combined lines (nginx combined + the outcome)', () => {
  const combined = lineFormatter('combined', { pop: 'ams', node: 'ams-1' });

  it('writes the combined format, times in UTC, then the outcome', () => {
    expect(combined(hit)).toBe('203.0.113.7 - - [05/Dec/2026:01:29:00 +0000] "GET /photos/cat.jpg?w=400 HTTP/1.1" 200 1024 "https://site.example/gallery" "Mozilla/5.0 (X11; Linux x86_64)" hit\n');
  });

  it('writes - for a Referer, User-Agent or client address that is not there', () => {
    expect(combined({ ...miss, clientAddress: undefined, method: 'HEAD', status: 304, bytes: 0, protocol: 'HTTP/1.0' })).toBe('- - - [05/Dec/2026:01:29:02 +0000] "HEAD /a.css HTTP/1.0" 304 0 "-" "-" miss\n');
  });

  it('escapes as nginx does: " as \\x22, \\ as \\x5C, control and non-ASCII bytes as \\xHH', () => {
    const line = combined({ ...hit, clientAddress: '::ffff:10.0.0.1', target: '/a"b\\c\x01', userAgent: 'say "hi"\r\n', referer: 'caf\xc3\xa9' });
    expect(line).toBe('10.0.0.1 - - [05/Dec/2026:01:29:00 +0000] "GET /a\\x22b\\x5Cc\\x01 HTTP/1.1" 200 1024 "caf\\xC3\\xA9" "say \\x22hi\\x22\\x0D\\x0A" hit\n');
    expect(combinedEscape('plain text, visible ASCII ~')).toBe('plain text, visible ASCII ~');
    expect(combinedEscape('\x7f')).toBe('\\x7F');
    // A character past latin1 (never from Node's parser, which reads bytes) as its UTF-8 bytes.
    expect(combinedEscape('€')).toBe('\\xE2\\x82\\xAC');
  });
});

describe('timestamps, made once a second', () => {
  it('isoTime: milliseconds padded, seconds advancing', () => {
    expect(isoTime(T)).toBe('2026-12-05T01:29:00.123Z');
    expect(isoTime(T - 123 + 5)).toBe('2026-12-05T01:29:00.005Z');
    expect(isoTime(T - 123 + 40.9)).toBe('2026-12-05T01:29:00.040Z');
    expect(isoTime(T + 877)).toBe('2026-12-05T01:29:01.000Z');
    expect(isoTime(Date.UTC(2027, 0, 1, 0, 0, 0, 999))).toBe('2027-01-01T00:00:00.999Z');
  });

  it('clfTime: day/month/year:hour:minute:second +0000', () => {
    expect(clfTime(T)).toBe('05/Dec/2026:01:29:00 +0000');
    expect(clfTime(Date.UTC(2027, 0, 1, 9, 8, 7))).toBe('01/Jan/2027:09:08:07 +0000');
  });
});

describe('loggedFields', () => {
  it('takes the first Host, User-Agent and Referer in any case, and nothing else', () => {
    expect(loggedFields(['HOST', 'a.example', 'user-agent', 'curl/8', 'Referer', 'https://r/', 'Host', 'b.example', 'X-Referer', 'no', 'Accept', '*/*'])).toEqual({ host: 'a.example', userAgent: 'curl/8', referer: 'https://r/' });
    expect(loggedFields([])).toEqual({ host: undefined, userAgent: undefined, referer: undefined });
  });
});
