import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, request } from 'undici';
import { PUBLISH_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startTestOrigin({ maxUploadBytes: '1MiB' });
});
afterAll(async () => origin.stop());

async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(`${origin.url}${path}`, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
}

/** Sends `request` as written on a fresh connection and returns everything the server sent. */
function rawExchange(base: string, request: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(request));
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer in 5 s')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

const PNG_1x1 = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' + '1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');

describe('publisher API and originals', () => {
  it('answers Expect: 100-continue with the refusal itself when the headers already fail, so no body is sent', async () => {
    const { hostname, port } = new URL(origin.url);
    /** Sends the head, waits for the first answer, sends the body only after a 100; returns all it read. */
    const ask = (head: string, body: string): Promise<string> =>
      new Promise((resolve, reject) => {
        let text = '';
        const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(head));
        socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer in 5 s; read ${JSON.stringify(text)}`)));
        socket.on('data', (c: Buffer) => {
          const first = text === '';
          text += c.toString('latin1');
          if (first && text.startsWith('HTTP/1.1 100 ')) socket.write(body);
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(text));
      });
    const head = (token: string, length: number, connection = 'close'): string =>
      `PUT /_cdn/assets/expect/a.txt HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: ${connection}\r\n\r\n`;

    // The server closes the connection after a refusal (the announced body never comes), even one the client would keep.
    const wrongToken = await ask(head('wrong-token', 5, 'keep-alive'), 'hello');
    expect(wrongToken).toMatch(/^HTTP\/1\.1 403 /);
    expect(wrongToken.toLowerCase()).toContain('connection: close');
    expect(wrongToken).not.toContain('100 Continue');
    const tooLarge = await ask(head(PUBLISH_TOKEN, 2 * 1024 * 1024), 'x');
    expect(tooLarge).toMatch(/^HTTP\/1\.1 413 /);
    expect(tooLarge.toLowerCase()).toContain('connection: close');
    // A path or a Surrogate-Key the upload would be refused for: refused before the body too.
    const badPath = await ask(head(PUBLISH_TOKEN, 5).replace('/expect/a.txt', '/expect/a%2fb.txt'), 'hello');
    expect(badPath).toMatch(/^HTTP\/1\.1 400 /);
    expect(badPath).not.toContain('100 Continue');
    const badTag = await ask(head(PUBLISH_TOKEN, 5).replace('Expect:', 'Surrogate-Key: t\u00e9\r\nExpect:'), 'hello');
    expect(badTag).toMatch(/^HTTP\/1\.1 400 /);
    expect(badTag).not.toContain('100 Continue');
    const accepted = await ask(head(PUBLISH_TOKEN, 5), 'hello');
    expect(accepted).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
    expect((await get('/expect/a.txt')).body.toString()).toBe('hello');
  });

  it('stores an upload and serves it back byte-exact with its metadata', async () => {
    const data = randomBytes(200_000);
    const put = await origin.put('files/blob.bin', data, { 'cache-control': 'public, max-age=600', 'surrogate-key': 'a b a' });
    expect(put.status).toBe(201);
    const sha = createHash('sha256').update(data).digest('hex');
    expect(put.json).toMatchObject({ path: 'files/blob.bin', size: 200_000, sha256: sha, etag: `"${sha.slice(0, 32)}"`, tags: ['a', 'b'], cacheControl: 'public, max-age=600' });

    const res = await get('/files/blob.bin');
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
    expect(res.headers['content-length']).toBe('200000');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['etag']).toBe(`"${sha.slice(0, 32)}"`);
    expect(res.headers['cache-control']).toBe('public, max-age=600');
    expect(res.headers['surrogate-key']).toBe('/files/blob.bin a b');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(new Date(res.headers['last-modified']!).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const again = await origin.put('files/blob.bin', data);
    expect(again.status).toBe(200);
  });

  it('sniffs the content type from the bytes, not from the client', async () => {
    await origin.put('img/pixel.txt', PNG_1x1, { 'content-type': 'text/plain' });
    expect((await get('/img/pixel.txt')).headers['content-type']).toBe('image/png');
    await origin.put('fake.jpg', 'just some text, not a JPEG\n', { 'content-type': 'image/jpeg' });
    expect((await get('/fake.jpg')).headers['content-type']).toBe('text/plain; charset=utf-8');
    await origin.put('site/app.css', 'body{color:red}', { 'content-type': 'image/png' });
    expect((await get('/site/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('serves fingerprinted names as immutable and others with the default', async () => {
    await origin.put('assets/app.3f9a2b1c.js', 'console.log(1)');
    await origin.put('assets/index-BqE8yL4k.css', 'a{}');
    await origin.put('assets/app.js', 'console.log(2)');
    expect((await get('/assets/app.3f9a2b1c.js')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/assets/index-BqE8yL4k.css')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/assets/app.js')).headers['cache-control']).toBe('public, max-age=3600');
  });

  it('answers conditional requests with 304 and preconditions with 412', async () => {
    await origin.put('cond/a.txt', 'hello conditional');
    const first = await get('/cond/a.txt');
    const etag = first.headers['etag']!;
    const lm = first.headers['last-modified']!;
    const inm = await get('/cond/a.txt', { 'if-none-match': etag });
    expect(inm.status).toBe(304);
    expect(inm.body.length).toBe(0);
    expect(inm.headers['etag']).toBe(etag);
    expect(inm.headers['cache-control']).toBe('public, max-age=3600');
    expect((await get('/cond/a.txt', { 'if-none-match': `W/${etag}` })).status).toBe(304);
    expect((await get('/cond/a.txt', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await get('/cond/a.txt', { 'if-modified-since': lm })).status).toBe(304);
    expect((await get('/cond/a.txt', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status).toBe(200);
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    expect((await get('/cond/a.txt', { 'if-none-match': '"other"', 'if-modified-since': lm })).status).toBe(200);
    expect((await get('/cond/a.txt', { 'if-match': '"other"' })).status).toBe(412);
    expect((await get('/cond/a.txt', { 'if-match': etag })).status).toBe(200);
  });

  it('serves single, open and suffix ranges, and 416 when unsatisfiable', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    await origin.put('range/r.bin', data);
    const a = await get('/range/r.bin', { range: 'bytes=2-5' });
    expect(a.status).toBe(206);
    expect(a.body.toString()).toBe('2345');
    expect(a.headers['content-range']).toBe('bytes 2-5/20');
    expect(a.headers['content-length']).toBe('4');
    const open = await get('/range/r.bin', { range: 'bytes=15-' });
    expect(open.body.toString()).toBe('fghij');
    const suffix = await get('/range/r.bin', { range: 'bytes=-3' });
    expect(suffix.body.toString()).toBe('hij');
    expect(suffix.headers['content-range']).toBe('bytes 17-19/20');
    const clamp = await get('/range/r.bin', { range: 'bytes=18-100' });
    expect(clamp.body.toString()).toBe('ij');
    const bad = await get('/range/r.bin', { range: 'bytes=20-' });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */20');
    const etag = a.headers['etag']!;
    expect((await get('/range/r.bin', { range: 'bytes=0-0', 'if-range': etag })).status).toBe(206);
    const stale = await get('/range/r.bin', { range: 'bytes=0-0', 'if-range': '"old"' });
    expect(stale.status).toBe(200);
    expect(stale.body.equals(data)).toBe(true);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    await origin.put('head/h.txt', 'twelve bytes');
    const h = await get('/head/h.txt', {}, 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body.length).toBe(0);
    expect(h.headers['content-length']).toBe('12');
    expect(h.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('serves an original SVG with a policy that forbids scripts', async () => {
    const evil = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)"><script>alert(2)</script><rect width="10" height="10"/></svg>';
    await origin.put('svg/evil.svg', evil);
    const res = await get('/svg/evil.svg');
    expect(res.headers['content-type']).toBe('image/svg+xml');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('recognises an SVG behind a long prolog (comments and entity declarations from an editor)', async () => {
    const entities = Array.from({ length: 60 }, (_, i) => `<!ENTITY ns_${i} "http://ns.example.com/illustrator/${'x'.repeat(100)}/${i}/">`).join('\n');
    const svg = `<?xml version="1.0"?>\n<!-- Generator: ${'an editor '.repeat(300)} -->\n<!DOCTYPE svg [\n${entities}\n]>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>`;
    expect(svg.indexOf('<svg')).toBeGreaterThan(8192);
    await origin.put('svg/long-prolog.svg', svg);
    const res = await get('/svg/long-prolog.svg');
    expect(res.headers['content-type']).toBe('image/svg+xml');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
  });

  it('serves every XML document with that policy: SVG or XHTML behind a namespace prefix runs scripts too', async () => {
    const prefixed = '<?xml version="1.0"?><x:svg xmlns:x="http://www.w3.org/2000/svg"><x:script>alert(1)</x:script></x:svg>';
    const xhtml = '<html xmlns="http://www.w3.org/1999/xhtml"><body><script>alert(1)</script></body></html>';
    for (const [path, body] of [['xml/prefixed.xml', prefixed], ['xml/page.xml', xhtml], ['xml/feed.xml', '<?xml version="1.0"?><rss/>']] as const) {
      await origin.put(path, body);
      const res = await get(`/${path}`);
      expect(res.headers['content-type'], path).toBe('application/xml');
      expect(res.headers['content-security-policy'], path).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox");
    }
    // Not XML, not given the policy: a stylesheet is not a document.
    await origin.put('xml/site.css', 'a{}');
    expect((await get('/xml/site.css')).headers['content-security-policy']).toBeUndefined();
  });

  it('404s missing assets and deletes', async () => {
    expect((await get('/nope/missing.txt')).status).toBe(404);
    // The root is a well-formed URL for which there is no asset, not a bad path.
    const root = await get('/');
    expect(root.status).toBe(404);
    expect(JSON.parse(root.body.toString())).toMatchObject({ error: 'not_found' });
    expect((await get('/', {}, 'HEAD')).status).toBe(404);
    await origin.put('del/x.txt', 'x');
    const del = await request(`${origin.url}/_cdn/assets/del/x.txt`, { method: 'DELETE', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` } });
    expect(del.statusCode).toBe(204);
    await del.body.dump();
    expect((await get('/del/x.txt')).status).toBe(404);
    const again = await request(`${origin.url}/_cdn/assets/del/x.txt`, { method: 'DELETE', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` } });
    expect(again.statusCode).toBe(404);
    await again.body.dump();
  });

  it('honours If-Match, If-None-Match and If-Unmodified-Since on uploads and deletes (412, nothing changed)', async () => {
    const created = await origin.put('wcond/a.txt', 'first', { 'if-none-match': '*' });
    expect(created.status).toBe(201);
    const etag = String(created.json['etag']);
    // Create-only: the asset exists now.
    const again = await origin.put('wcond/a.txt', 'second', { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    expect(again.json).toMatchObject({ error: 'precondition_failed' });
    expect((await origin.put('wcond/a.txt', 'second', { 'if-match': '"bogus"' })).status).toBe(412);
    expect((await origin.put('wcond/a.txt', 'second', { 'if-unmodified-since': 'Thu, 01 Jan 2015 00:00:00 GMT' })).status).toBe(412);
    expect((await get('/wcond/a.txt')).body.toString()).toBe('first');
    // The version the publisher saw: replaced.
    const replaced = await origin.put('wcond/a.txt', 'second', { 'if-match': etag });
    expect(replaced.status).toBe(200);
    expect((await get('/wcond/a.txt')).body.toString()).toBe('second');
    expect((await origin.put('wcond/new.txt', 'x', { 'if-match': '*' })).status).toBe(412);
    expect((await get('/wcond/new.txt')).status).toBe(404);

    const del = (headers: Record<string, string>) => request(`${origin.url}/_cdn/assets/wcond/a.txt`, { method: 'DELETE', headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, ...headers } });
    const refused = await del({ 'if-match': etag });
    expect(refused.statusCode).toBe(412);
    await refused.body.dump();
    expect((await get('/wcond/a.txt')).status).toBe(200);
    const deleted = await del({ 'if-match': String(replaced.json['etag']) });
    expect(deleted.statusCode).toBe(204);
    await deleted.body.dump();

    // Of concurrent uploads to a new path, one created it; the others replaced it.
    const plain = await Promise.all(Array.from({ length: 6 }, (_, i) => origin.put('wcond/many.txt', `upload ${i}`)));
    expect(plain.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    // Of concurrent create-only uploads, exactly one wins.
    const racers = await Promise.all(Array.from({ length: 6 }, (_, i) => origin.put('wcond/race.txt', `racer ${i}`, { 'if-none-match': '*' })));
    expect(racers.map((r) => r.status).sort()).toEqual([201, 412, 412, 412, 412, 412]);
  });

  it('refuses what HTTP/1.1 forbids though Node accepts it: two Host fields, a Host that is not one, another version', async () => {
    await origin.put('frame/a.txt', 'a');
    for (const [head, status] of [
      ['GET /frame/a.txt HTTP/1.1\r\nHost: a\r\nHost: b', 400],
      ['GET /frame/a.txt HTTP/1.1\r\nHost: a b', 400],
      ['GET /frame/a.txt HTTP/1.1\r\nHost: <script>', 400],
      ['GET /frame/a.txt HTTP/1.1\r\nHost: x:99999', 400],
      ['GET /frame/a.txt HTTP/2.0\r\nHost: a', 505],
      ['GET /frame/a.txt HTTP/1.1\r\nHost: cdn.example:8080', 200],
    ] as const) {
      const answer = await rawExchange(origin.url, `${head}\r\nConnection: close\r\n\r\n`);
      expect([head, answer.slice(0, 12)]).toEqual([head, `HTTP/1.1 ${status}`]);
    }
  });

  it('closes the connection after answering a GET whose body never finishes, instead of waiting for it', async () => {
    await origin.put('trickle/a.txt', 'a');
    const started = performance.now();
    // rawExchange resolves when the server closes; the announced 1 MB body never comes.
    const answer = await rawExchange(origin.url, 'GET /trickle/a.txt HTTP/1.1\r\nHost: o\r\nContent-Length: 1000000\r\n\r\nxxxx');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('reads a Surrogate-Key sent twice as the tags of both', async () => {
    const res = await request(`${origin.url}/_cdn/assets/tags/twice.css`, {
      method: 'PUT',
      headers: ['authorization', `Bearer ${PUBLISH_TOKEN}`, 'surrogate-key', 'a1 c3', 'surrogate-key', 'b2'],
      body: 'a{}',
    });
    expect(res.statusCode).toBe(201);
    expect(((await res.body.json()) as { tags: string[] }).tags).toEqual(['a1', 'c3', 'b2']);
  });

  it('refuses uploads without a token (401) or with a wrong one (403)', async () => {
    const none = await request(`${origin.url}/_cdn/assets/auth/x.txt`, { method: 'PUT', body: 'x' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="publish"');
    expect(((await none.body.json()) as { error: string }).error).toBe('unauthorized');
    const wrong = await request(`${origin.url}/_cdn/assets/auth/x.txt`, { method: 'PUT', body: 'x', headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(wrong.statusCode).toBe(403);
    expect(((await wrong.body.json()) as { error: string }).error).toBe('forbidden');
    const delNone = await request(`${origin.url}/_cdn/assets/auth/x.txt`, { method: 'DELETE' });
    expect(delNone.statusCode).toBe(401);
    await delNone.body.dump();
    expect((await get('/auth/x.txt')).status).toBe(404);
  });

  it('refuses an upload over the size limit with 413 and keeps the old version', async () => {
    await origin.put('big/b.bin', 'small original');
    const declared = await origin.put('big/b.bin', randomBytes(1024 * 1024 + 1));
    expect(declared.status).toBe(413);
    expect(declared.json['error']).toBe('payload_too_large');
    // Chunked (no Content-Length): the limit is enforced while streaming.
    async function* chunks() {
      for (let i = 0; i < 20; i++) yield randomBytes(100_000);
    }
    // Its own connection: the origin closes it after answering 413 mid-body.
    const client = new Client(origin.url);
    const res = await client.request({ path: '/_cdn/assets/big/b.bin', method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body: Readable.from(chunks()) });
    expect(res.statusCode).toBe(413);
    await res.body.dump();
    await client.destroy();
    expect((await get('/big/b.bin')).body.toString()).toBe('small original');
  });

  it.each([
    ['/_cdn/assets/..%2f..%2fetc%2fpasswd'],
    ['/_cdn/assets/a/%2e%2e/%2e%2e/b'],
    ['/_cdn/assets/a%5c..%5cb'],
    ['/_cdn/assets/a%00b'],
    ['/_cdn/assets/%2fetc%2fpasswd'],
    ['/_cdn/assets/a//b'],
    ['/_cdn/assets/../../etc/passwd'],
    ['/photos/%2e%2e/%2e%2e/etc/passwd'],
  ])('refuses the traversal attempt %s with 400', async (path) => {
    // A raw request target, as an attacker sends it (a URL parser would resolve the dot segments).
    const client = new Client(origin.url);
    const res = await client.request({ path, method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body: 'x' });
    expect(res.statusCode).toBe(400);
    const body = (await res.body.json()) as { error: string; field: string };
    expect(body.error).toBe('invalid_path');
    expect(body.field).toBe('path');
    await client.close();
  });

  it('refuses an upload whose Cache-Control caches and browsers would misread, storing nothing', async () => {
    for (const [value, says] of [
      ['max-age=abc', 'max-age needs a number of seconds'],
      ['public, s-maxage=-5', 's-maxage needs a number of seconds'],
      ['max-age', 'max-age needs a number of seconds'],
      ['public; max-age=60', 'is not a directive'],
      ['private="unterminated', 'is not a directive'],
      ['max age=60', 'is not a directive'],
    ] as const) {
      const put = await origin.put('cc/refused.txt', 'x', { 'cache-control': value });
      expect(put.status, value).toBe(400);
      expect(put.json).toMatchObject({ error: 'invalid_header', field: 'cache-control' });
      expect(String(put.json['message']), value).toContain(says);
    }
    expect((await get('/cc/refused.txt')).status).toBe(404);
    // Extensions, quoted arguments and empty list elements are valid, and served as sent.
    const ok = 'public, max-age="600", , stale-while-revalidate=30, x-ext="a, b", no-cache="set-cookie"';
    expect((await origin.put('cc/kept.txt', 'x', { 'cache-control': ok })).status).toBe(201);
    expect((await get('/cc/kept.txt')).headers['cache-control']).toBe(ok);
  });

  it('answers 405 with Allow to methods a path does not support', async () => {
    const post = await request(`${origin.url}/some/file.txt`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
    expect(((await post.body.json()) as { error: string }).error).toBe('method_not_allowed');
    const getAsset = await request(`${origin.url}/_cdn/assets/some/file.txt`);
    expect(getAsset.statusCode).toBe(405);
    expect(getAsset.headers['allow']).toBe('PUT, DELETE');
    await getAsset.body.dump();
    // OPTIONS is answered, with what the target allows (RFC 9110 §9.3.7).
    const options = await request(`${origin.url}/some/file.txt`, { method: 'OPTIONS' });
    expect([options.statusCode, options.headers['allow']]).toEqual([204, 'GET, HEAD, OPTIONS']);
    await options.body.dump();
    // OPTIONS * asks about the server; any other target that is neither a path nor a URL is a 400 naming it.
    const server = await rawExchange(origin.url, 'OPTIONS * HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n');
    expect(server).toMatch(/^HTTP\/1\.1 204 /);
    expect(server).toMatch(/\r\nallow: GET, HEAD, PUT, DELETE, OPTIONS\r\n/);
    const star = await rawExchange(origin.url, 'GET * HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n');
    expect(star).toMatch(/^HTTP\/1\.1 400 /);
    expect(star).toContain('"error":"bad_request"');
    expect(star).toContain('request target \\"*\\"');
  });

  it('routes content by the raw target: absolute-form, reserved names, errors as JSON with a Date', async () => {
    await origin.put('route/a.txt', 'hello');
    // Absolute-form (RFC 9112 §3.2.2) names the same asset as origin-form.
    const raw = await rawExchange(origin.url, 'GET http://cdn.example/route/a.txt HTTP/1.1\r\nHost: cdn.example\r\nConnection: close\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw.endsWith('\r\n\r\nhello')).toBe(true);
    // `_cdn` written with an escape is not a way into the control endpoints, nor an asset name.
    const reserved = await get('/%5Fcdn/healthz');
    expect(reserved.status).toBe(400);
    expect(JSON.parse(reserved.body.toString())).toMatchObject({ error: 'invalid_path', field: 'path' });
    for (const res of [reserved, await get('/route/missing.txt'), await get('/route/a.txt?w=abc')]) {
      expect(res.headers['content-type']).toBe('application/json');
      expect(Math.abs(new Date(res.headers['date']!).getTime() - Date.now())).toBeLessThan(60_000);
    }
    const head = await get('/route/missing.txt', {}, 'HEAD');
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
  });

  it('answers health and metrics', async () => {
    const h = await get('/_cdn/healthz');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body.toString())).toEqual({ status: 'ok' });
    const m = await get('/_cdn/metrics');
    expect(m.status).toBe(200);
    expect(m.body.toString()).toMatch(/anycdn_origin_http_requests_total\{method="GET",status="200",outcome="original"\} \d+/);
  });
});
