import { describe, expect, it } from 'vitest';
import { requestUrl } from '../../../edge/app.js';
import { CdnError } from '../../../src/errors.js';

describe('requestUrl', () => {
  it.each([
    ['/a/b.css?x=1', 'cdn.example', 'http://cdn.example/a/b.css?x=1'],
    ['/a', 'cdn.example:8080', 'http://cdn.example:8080/a'],
    ['/a', '127.0.0.1:47102', 'http://127.0.0.1:47102/a'],
    ['/a', '[::1]:8080', 'http://[::1]:8080/a'],
    ['/a', undefined, 'http://localhost/a'],
    ['//other/x', 'cdn.example', 'http://cdn.example//other/x'],
    ['http://elsewhere.example/x', 'cdn.example', 'http://elsewhere.example/x'],
  ])('%s with Host %s is %s', (target, host, url) => {
    expect(requestUrl(target, host).href).toBe(url);
  });

  it.each([
    // Each would move the path (or the host) the URL is built from: RFC 9110 §7.2 allows a host and a port only.
    ['127.0.0.1:47102/site'],
    ['127.0.0.1:47102/_cdn'],
    ['a/../b'],
    ['a?x=1'],
    ['a#frag'],
    ['user@cdn.example'],
    ['cdn.example\\x'],
    ['cdn.example x'],
    ['cdn.example:80:80'],
    ['[::1'],
  ])('refuses Host %s with a 400 naming the header', (host) => {
    let error: unknown;
    try {
      requestUrl('/q', host);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CdnError);
    expect((error as CdnError).status).toBe(400);
    expect((error as CdnError).message).toContain('invalid Host header');
  });
});
