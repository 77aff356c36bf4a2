import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { assertTransformableSvg } from '../../../origin/variants/svg-guard.js';

const svg = (body: string, head = ''): Buffer => Buffer.from(`${head}<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100">${body}</svg>`);

describe('SVGs allowed to be rasterised', () => {
  it.each([
    ['shapes', svg('<rect width="10" height="10"/><circle r="5"/>')],
    ['internal use', svg('<defs><g id="a"><rect width="1" height="1"/></g></defs><use href="#a"/><use xlink:href="#a"/>')],
    ['a commented-out image', svg('<!-- <image href="data:image/png;base64,AAAA"/> --><rect/>')],
    ['an <imagery> lookalike', svg('<imagery/>')],
    ['an image pointing at a file (never loaded)', svg('<image href="file:///etc/passwd" width="10" height="10"/><image xlink:href="x.png"/>')],
    ['an XML declaration and a plain DOCTYPE', svg('<rect/>', '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">')],
  ])('accepts %s', (_name, data) => {
    expect(() => assertTransformableSvg(data)).not.toThrow();
  });

  it.each([
    ['an embedded image', svg('<image href="data:image/png;base64,AAAA" width="100" height="100"/>'), '<image>'],
    ['an embedded xlink image', svg('<image xlink:href=\' data:image/png;base64,AAAA\'/>'), '<image>'],
    ['a prefixed embedded image', svg('<svg:image xmlns:svg="http://www.w3.org/2000/svg" href="DATA:image/png;base64,AAAA"/>'), '<image>'],
    ['an image address hidden behind a character reference', svg('<image href="&#100;ata:image/png;base64,AAAA"/>'), '<image>'],
    ['feImage', svg('<filter id="f"><feImage href="data:image/png;base64,AAAA"/></filter>'), '<feImage>'],
    ['xi:include', svg('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" parse="text"/>'), '<include>'],
    ['an external use', svg('<use href="data:image/svg+xml;base64,AAAA#x"/>'), '<use>'],
    ['an entity declaration', svg('<text>&a;</text>', '<!DOCTYPE svg [<!ENTITY a "hello">]>'), 'entities'],
  ])('refuses %s with 415', (_name, data, mention) => {
    try {
      assertTransformableSvg(data);
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(CdnError);
      expect((err as CdnError).status).toBe(415);
      expect((err as CdnError).code).toBe('unsupported_image');
      expect((err as CdnError).message).toContain(mention);
    }
  });
});
