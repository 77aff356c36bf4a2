import { describe, expect, it } from 'vitest';
import { certificateNames, nameIndex, selectCertificate } from '../../../src/serve/tls.js';

describe('certificateNames', () => {
  it.each([
    ['DNS:cdn.example, DNS:*.cdn.example', 'CN=cdn.example', ['cdn.example', '*.cdn.example']],
    ['DNS:CDN.Example, IP Address:127.0.0.1', 'CN=x', ['cdn.example']],
    // RFC 6125 §6.4.4: the CN counts only when there is no DNS name.
    ['IP Address:127.0.0.1', 'O=Org\nCN=Host.Example', ['host.example']],
    [undefined, 'CN=only.example', ['only.example']],
    [undefined, 'O=No Name', []],
  ])('%s / %j → %j', (san, subject, names) => {
    expect(certificateNames(san, subject)).toEqual(names);
  });
});

describe('selectCertificate', () => {
  const index = nameIndex([{ names: ['default.example'] }, { names: ['a.example', '*.b.example'] }, { names: ['*.b.example', 'c.b.example', 'a.example'] }]);

  it.each([
    ['a.example', 1],
    ['A.EXAMPLE.', 1],
    ['x.b.example', 1],
    // An exact name wins over a wildcard of an earlier pair.
    ['c.b.example', 2],
    ['default.example', 0],
    // A wildcard covers one label, never the bare domain or two labels (RFC 6125 §6.4.3).
    ['b.example', undefined],
    ['y.x.b.example', undefined],
    ['unknown.example', undefined],
    ['', undefined],
    ['localhost', undefined],
  ])('%j → %j', (name, want) => {
    expect(selectCertificate(index, name)).toBe(want);
  });
});
