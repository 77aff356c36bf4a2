import { describe, expect, it } from 'vitest';
import { httpsLocation } from '../../../edge/https.js';

describe('httpsLocation', () => {
  it.each([
    ['cdn.example', '/a.jpg?w=1', 443, 'https://cdn.example/a.jpg?w=1'],
    ['cdn.example:80', '/a.jpg', 443, 'https://cdn.example/a.jpg'],
    ['CDN.Example:8080', '/', 8443, 'https://cdn.example:8443/'],
    ['[::1]:8080', '/x', 8443, 'https://[::1]:8443/x'],
    ['127.0.0.1', '/x', 443, 'https://127.0.0.1/x'],
    // No usable Host: the app answers (400 for a bad one).
    [undefined, '/x', 443, undefined],
    ['', '/x', 443, undefined],
    ['a b', '/x', 443, undefined],
    ['user@cdn.example', '/x', 443, undefined],
    ['cdn.example', '*', 443, undefined],
    // Absolute-form: its own authority (RFC 9112 §3.2.2).
    ['cdn.example', 'http://other.example:80/x?y=1', 443, 'https://other.example/x?y=1'],
    ['cdn.example', 'http://other.example?y=1', 8443, 'https://other.example:8443/?y=1'],
    ['cdn.example', 'http://a b/x', 443, undefined],
  ])('%j %j → %j', (host, target, port, want) => {
    expect(httpsLocation(host, target, port)).toBe(want);
  });
});
