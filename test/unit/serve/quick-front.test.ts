import { describe, expect, it } from 'vitest';
import { fieldNames, readHead } from '../../../src/serve/quick-front.js';

const head = (text: string) => readHead(Buffer.from(text, 'latin1'), 0);

describe('readHead: what the quick front reads itself', () => {
  it('reads a GET: target, fields as sent with values trimmed, the end of the head', () => {
    const bytes = 'GET /a/b.jpg?w=400 HTTP/1.1\r\nHost: cdn.example\r\nAccept:  image/avif,*/*\t\r\nX-Empty:\r\n\r\n';
    const read = head(bytes)!;
    expect(read.request.method).toBe('GET');
    expect(read.request.url).toBe('/a/b.jpg?w=400');
    expect(read.request.rawHeaders).toEqual(['Host', 'cdn.example', 'Accept', 'image/avif,*/*', 'X-Empty', '']);
    expect(read.request.headers).toEqual({ host: 'cdn.example', accept: 'image/avif,*/*', 'x-empty': '' });
    expect(read.end).toBe(bytes.length);
    expect(read.close).toBe(false);
  });

  it('reads a HEAD, and one of several heads in the bytes', () => {
    expect(head('HEAD / HTTP/1.1\r\nhost: a\r\n\r\n')!.request).toMatchObject({ method: 'HEAD', url: '/', rawHeaders: ['host', 'a'] });
    const two = Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    const first = readHead(two, 0)!;
    expect(first.request.url).toBe('/1');
    const second = readHead(two, first.end)!;
    expect(second.request.url).toBe('/2');
    expect(second.end).toBe(two.length);
  });

  it('trims only spaces and tabs around a value, whatever its length, and keeps those inside', () => {
    const read = head('GET / HTTP/1.1\r\nHOST:\ta\r\nX-Blank: \t \r\nX-Inner:\t a \t b\t\r\nX-Bare:c\r\n\r\n')!;
    expect(read.request.rawHeaders).toEqual(['HOST', 'a', 'X-Blank', '', 'X-Inner', 'a \t b', 'X-Bare', 'c']);
    expect(read.request.headers).toEqual({ host: 'a', 'x-blank': '', 'x-inner': 'a \t b', 'x-bare': 'c' });
  });

  it('reads one field by lower-case name, whatever the case it was sent in, the value trimmed; undefined when absent', () => {
    const read = head('GET / HTTP/1.1\r\nHOST: cdn.example\r\nIf-None-Match:  "a", W/"b" \r\nx-empty:\r\nReferer: /p\r\n\r\n')!.request;
    expect(read.field!('host')).toBe('cdn.example');
    expect(read.field!('if-none-match')).toBe('"a", W/"b"');
    expect(read.field!('x-empty')).toBe('');
    expect(read.field!('referer')).toBe('/p');
    expect(read.field!('range')).toBeUndefined();
    expect(read.field!('hos')).toBeUndefined();
    expect(read.field!('hostx')).toBeUndefined();
    // The field list made afterwards is the same as ever.
    expect(read.rawHeaders).toEqual(['HOST', 'cdn.example', 'If-None-Match', '"a", W/"b"', 'x-empty', '', 'Referer', '/p']);
  });

  it('tells whether any of a set of names is among the fields, whatever the case', () => {
    const read = head('GET / HTTP/1.1\r\nHost: a\r\nRANGE: bytes=0-1\r\nAccept: */*\r\n\r\n')!.request;
    expect(read.hasAny!(fieldNames(['range']))).toBe(true);
    expect(read.hasAny!(fieldNames(['Cache-Control', 'Pragma', 'Range']))).toBe(true);
    expect(read.hasAny!(fieldNames(['cache-control', 'pragma']))).toBe(false);
    expect(read.hasAny!(fieldNames(['rang', 'ranges', 'accept-encoding']))).toBe(false);
    expect(read.hasAny!(fieldNames([]))).toBe(false);
  });

  it('tells apart names that share a hash-sized shape: every field is found by its own name', () => {
    const names = Array.from({ length: 60 }, (_, i) => `X-${String.fromCharCode(65 + (i % 26))}${i}`);
    const read = head(`GET / HTTP/1.1\r\nHost: a\r\n${names.map((n, i) => `${n}: v${i}\r\n`).join('')}\r\n`)!.request;
    names.forEach((n, i) => expect(read.field!(n.toLowerCase())).toBe(`v${i}`));
  });

  it('notes Connection: close, and takes keep-alive in any case', () => {
    expect(head('GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n')!.close).toBe(true);
    expect(head('GET / HTTP/1.1\r\nHost: a\r\nconnection: KEEP-ALIVE\r\n\r\n')!.close).toBe(false);
  });

  // Everything here is left to Node's HTTP server, which answers, limits or refuses it.
  it.each([
    ['a head not wholly there', 'GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n'],
    ['a request line alone, unfinished', 'GET / HTTP/1.1\r\n'],
    ['a POST', 'POST / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no Host (RFC 9112 §3.2: Node answers 400)', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['no fields at all', 'HEAD / HTTP/1.1\r\n\r\n'],
    ['HTTP/1.0 (keep-alive rules of its own)', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['HTTP/2 prior knowledge', 'PRI * HTTP/2.0\r\nHost: a\r\n\r\nSM\r\n\r\n'],
    ['an absolute-form target', 'GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a target with a space', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a target with a byte above ASCII', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a target with a tab', 'GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a body by Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /'],
    ['a body of length 0 still announced', 'GET / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n'],
    ['a chunked body', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['Proxy-Connection (Node reads it as Connection)', 'GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n'],
    ['Connection with another option', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, TE\r\n\r\n'],
    ['a field twice', 'GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\naccept: b\r\n\r\n'],
    ['Host twice', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['a field twice, in different cases, not next to each other', 'GET / HTTP/1.1\r\nIf-None-Match: "a"\r\nHost: a\r\nIF-NONE-MATCH: "b"\r\n\r\n'],
    ['Content-Length in capitals', 'GET / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 5\r\n\r\nGET /'],
    ['Connection with no option', 'GET / HTTP/1.1\r\nHost: a\r\nConnection:\r\n\r\n'],
    ['a target cut by the end of the head', 'GET /a\r\n\r\n'],
    ['a version cut short', 'GET / HTTP/1.\r\nHost: a\r\n\r\n'],
    ['a folded field line', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n'],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['a field name that is no token', 'GET / HTTP/1.1\r\nHost: a\r\nX(A): a\r\n\r\n'],
    ['a field without a colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n'],
    ['an empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n'],
    ['a bare LF ending a field line', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n'],
    ['a bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n'],
    ['a control byte in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n'],
    ['a byte above ASCII in a value', 'GET / HTTP/1.1\r\nHost: a\r\nReferer: /caf\xe9\r\n\r\n'],
    ['a bare-LF request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
  ])('leaves %s to Node', (_what, bytes) => {
    expect(head(bytes)).toBeUndefined();
  });

  it('reads up to 64 fields and leaves more to Node (16 KiB of tiny fields costs it no quadratic check)', () => {
    const fields = (n: number) => `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: n - 1 }, (_, i) => `f${i}: v\r\n`).join('')}\r\n`;
    expect(head(fields(64))!.request.rawHeaders.length).toBe(128);
    expect(head(fields(65))).toBeUndefined();
    expect(head(fields(3000))).toBeUndefined();
  });

  it('leaves a head over 16 KiB to Node (its 431), and reads one just under', () => {
    const field = (n: number) => `GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(n)}\r\n\r\n`;
    const overhead = field(0).length;
    expect(head(field(16 * 1024 - overhead))).toBeDefined();
    expect(head(field(16 * 1024 - overhead + 1))).toBeUndefined();
  });
});
