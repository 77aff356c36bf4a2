import { describe, expect, it } from 'vitest';
import { http1RawHeaders } from '../../../src/serve/h2.js';

describe('http1RawHeaders', () => {
  it('drops pseudo-headers and gives :authority as the Host, first', () => {
    const headers = { ':method': 'GET', ':path': '/a', ':scheme': 'https', ':authority': 'cdn.example', accept: '*/*' };
    expect(http1RawHeaders(headers, [':method', 'GET', ':path', '/a', ':scheme', 'https', ':authority', 'cdn.example', 'accept', '*/*'])).toEqual(['host', 'cdn.example', 'accept', '*/*']);
  });

  it(':authority takes precedence over a Host field (RFC 9113 §8.3.1)', () => {
    const headers = { ':authority': 'cdn.example', host: 'other.example' };
    expect(http1RawHeaders(headers, [':authority', 'cdn.example', 'host', 'other.example', 'cookie', 'a=1', 'cookie', 'b=2'])).toEqual(['host', 'cdn.example', 'cookie', 'a=1', 'cookie', 'b=2']);
  });

  it('keeps a Host field when there is no :authority', () => {
    expect(http1RawHeaders({ host: 'cdn.example' }, ['host', 'cdn.example'])).toEqual(['host', 'cdn.example']);
  });

  it('builds the list from the record when the raw list is missing', () => {
    expect(http1RawHeaders({ ':authority': 'h', 'x-a': ['1', '2'] }, undefined)).toEqual(['host', 'h', 'x-a', '1', 'x-a', '2']);
  });
});
