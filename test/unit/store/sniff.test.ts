/** Content sniffing: magic numbers, SVG detection, text by extension, and the safe fallbacks. */
import { describe, expect, it } from 'vitest';
import { isImageType, isRasterImageType, isXmlType, sniffContentType } from '../../../src/sniff.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const text = (s: string): Buffer => Buffer.from(s, 'utf8');
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** An ISO-BMFF `ftyp` box with a major brand and compatible brands. */
function ftyp(major: string, ...compatible: string[]): Buffer {
  const size = 16 + 4 * compatible.length;
  const box = Buffer.alloc(size + 8);
  box.writeUInt32BE(size, 0);
  box.write('ftyp', 4, 'latin1');
  box.write(major, 8, 'latin1');
  compatible.forEach((brand, i) => box.write(brand, 16 + 4 * i, 'latin1'));
  return box;
}

/** The first 18 bytes of a BMP with a BITMAPINFOHEADER (40). */
const BMP = hex('424d 3a000000 00000000 36000000 28000000');
const SVG_PLAIN = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>';

describe('sniffContentType', () => {
  it.each<[string, Buffer, string, string]>([
    ['JPEG', hex('ffd8ffe000104a464946'), 'a.bin', 'image/jpeg'],
    ['JPEG named .txt', hex('ffd8ffdb'), 'a.txt', 'image/jpeg'],
    ['PNG', hex('89504e470d0a1a0a0000000d49484452'), 'a', 'image/png'],
    ['GIF89a', latin1('GIF89a\x01\x00\x01\x00'), 'a.gif', 'image/gif'],
    ['GIF87a', latin1('GIF87a\x01\x00\x01\x00'), 'a.png', 'image/gif'],
    ['WebP', latin1('RIFF\x24\x00\x00\x00WEBPVP8 '), 'a.webp', 'image/webp'],
    ['RIFF WAVE is not WebP', latin1('RIFF\x24\x00\x00\x00WAVEfmt '), 'a.webp', 'application/octet-stream'],
    ['AVIF', ftyp('avif', 'avif', 'mif1', 'miaf'), 'a.avif', 'image/avif'],
    ['AVIF sequence', ftyp('avis', 'avis', 'msf1'), 'a', 'image/avif'],
    ['AVIF under a mif1 major brand', ftyp('mif1', 'mif1', 'avif'), 'a', 'image/avif'],
    ['HEIC', ftyp('heic', 'mif1', 'heic'), 'a.heic', 'image/heif'],
    ['HEIX', ftyp('heix', 'mif1'), 'a', 'image/heif'],
    ['HEIF under mif1', ftyp('mif1', 'mif1', 'heic'), 'a', 'image/heif'],
    ['MP4 isom', ftyp('isom', 'isom', 'iso2', 'avc1', 'mp41'), 'a.mp4', 'video/mp4'],
    ['MP4 mp42', ftyp('mp42', 'mp42', 'isom'), 'a', 'video/mp4'],
    ['QuickTime', ftyp('qt  ', 'qt  '), 'a.mov', 'video/quicktime'],
    ['unknown ftyp brand', ftyp('zzzz', 'zzzz'), 'a.mp4', 'application/octet-stream'],
    ['TIFF little-endian', hex('49492a0008000000'), 'a.tif', 'image/tiff'],
    ['TIFF big-endian', hex('4d4d002a00000008'), 'a', 'image/tiff'],
    ['BMP', BMP, 'a.bmp', 'image/bmp'],
    ['ICO', hex('000001000100101000000100'), 'favicon.ico', 'image/x-icon'],
    ['PDF', text('%PDF-1.7\n%âãÏÓ\n'), 'doc.txt', 'application/pdf'],
    ['gzip', hex('1f8b0800000000000003'), 'a.css', 'application/gzip'],
    ['zip', latin1('PK\x03\x04\x14\x00\x00\x00'), 'a.zip', 'application/zip'],
    ['empty zip', latin1('PK\x05\x06\x00\x00'), 'a.zip', 'application/zip'],
    ['WOFF', latin1('wOFF\x00\x01\x00\x00'), 'a.woff', 'font/woff'],
    ['WOFF2', latin1('wOF2\x00\x01\x00\x00'), 'a.woff2', 'font/woff2'],
    ['TrueType', hex('0001000000120100'), 'a.ttf', 'font/ttf'],
    ['OpenType', latin1('OTTO\x00\x0c\x00\x80'), 'a.otf', 'font/otf'],
    ['WebM', hex('1a45dfa39f4286810142f7810142f2810442f381084282847765626d'), 'a.webm', 'video/webm'],
    ['Matroska', hex('1a45dfa39f4286810142f7810142f2810442f3810842828a6d6174726f736b61'), 'a.mkv', 'video/x-matroska'],
  ])('recognises %s', (_label, head, path, expected) => {
    expect(sniffContentType(head, path)).toBe(expected);
  });

  it.each<[string, string, string]>([
    ['a bare svg element', SVG_PLAIN, 'image/svg+xml'],
    ['<svg> with no attributes', '<svg><rect/></svg>', 'image/svg+xml'],
    ['a self-closing <svg/>', '<svg/>', 'image/svg+xml'],
    ['leading white space', '\n\t  ' + SVG_PLAIN, 'image/svg+xml'],
    ['a BOM and an XML declaration', '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n' + SVG_PLAIN, 'image/svg+xml'],
    ['comments and a processing instruction', '<?xml version="1.0"?><!-- a -- b --><?xml-stylesheet href="s.css"?>\n<!-- c -->' + SVG_PLAIN, 'image/svg+xml'],
    [
      'a doctype with an internal subset',
      '<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [ <!ENTITY ns "x"> ]>\n' + SVG_PLAIN,
      'image/svg+xml',
    ],
    ['a lower-case doctype', '<!doctype svg>' + SVG_PLAIN, 'image/svg+xml'],
    ['<svgx> is another element', '<svgx></svgx>', 'text/plain; charset=utf-8'],
    ['<SVG> in capitals (XML is case-sensitive)', '<SVG></SVG>', 'text/plain; charset=utf-8'],
    ['an svg inside html', '<html><body><svg></svg></body></html>', 'text/plain; charset=utf-8'],
    ['text before the element', 'hello <svg></svg>', 'text/plain; charset=utf-8'],
    ['an unterminated comment', '<!-- never closed <svg></svg>', 'text/plain; charset=utf-8'],
    ['an unterminated declaration', '<?xml version="1.0"', 'text/plain; charset=utf-8'],
  ])('SVG detection: %s', (_label, content, expected) => {
    expect(sniffContentType(text(content), 'a.txt')).toBe(expected);
  });

  it('an SVG under any name is SVG; a non-SVG text named .svg is text/plain', () => {
    expect(sniffContentType(text(SVG_PLAIN), 'logo.png')).toBe('image/svg+xml');
    expect(sniffContentType(text('<html></html>'), 'logo.svg')).toBe('text/plain; charset=utf-8');
  });

  it.each<[string, string]>([
    ['site.css', 'text/css; charset=utf-8'],
    ['SITE.CSS', 'text/css; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['app.mjs', 'text/javascript; charset=utf-8'],
    ['data.json', 'application/json'],
    ['app.js.map', 'application/json'],
    ['index.html', 'text/html; charset=utf-8'],
    ['index.htm', 'text/html; charset=utf-8'],
    ['notes.txt', 'text/plain; charset=utf-8'],
    ['feed.xml', 'application/xml'],
    ['site.webmanifest', 'application/manifest+json'],
    ['README.md', 'text/markdown; charset=utf-8'],
    ['table.csv', 'text/csv; charset=utf-8'],
    ['fake.jpg', 'text/plain; charset=utf-8'],
    ['fake.png', 'text/plain; charset=utf-8'],
    ['fake.webp', 'text/plain; charset=utf-8'],
    ['fake.avif', 'text/plain; charset=utf-8'],
    ['README', 'text/plain; charset=utf-8'],
    ['dir.css/file', 'text/plain; charset=utf-8'],
    ['.css', 'text/plain; charset=utf-8'],
    ['a.unknown', 'text/plain; charset=utf-8'],
  ])('text named %s is %s', (path, expected) => {
    expect(sniffContentType(text('{"a": "b"} body { color: red } é\n'), path)).toBe(expected);
  });

  it.each<[string, Buffer, string, string]>([
    ['an empty file by extension', Buffer.alloc(0), 'a.css', 'text/css; charset=utf-8'],
    ['an empty file named .jpg', Buffer.alloc(0), 'a.jpg', 'text/plain; charset=utf-8'],
    ['a character cut at the end of the head', Buffer.concat([text('caf'), hex('c3')]), 'a.css', 'text/css; charset=utf-8'],
    ['unknown binary', hex('000102030405'), 'a.bin', 'application/octet-stream'],
    ['NUL inside text', text('body {}\u0000'), 'a.css', 'application/octet-stream'],
    ['invalid UTF-8', hex('48c328'), 'a.txt', 'application/octet-stream'],
    ['Latin-1 text', latin1('caf\xe9 au lait'), 'a.txt', 'application/octet-stream'],
    ['UTF-16 with a BOM', hex('fffe3c007300'), 'a.svg', 'application/octet-stream'],
    ['binary named .json', hex('00ff00ff'), 'a.json', 'application/octet-stream'],
    ['text starting with BM', text('BMW makes cars\n'), 'a.txt', 'text/plain; charset=utf-8'],
    ['text starting with OTTO', text('OTTO was here\n'), 'a.txt', 'text/plain; charset=utf-8'],
    ['the bytes of "GIF" alone', text('GIF is a format'), 'a.txt', 'text/plain; charset=utf-8'],
  ])('%s', (_label, head, path, expected) => {
    expect(sniffContentType(head, path)).toBe(expected);
  });
});

describe('isRasterImageType / isImageType', () => {
  it.each<[string, boolean, boolean]>([
    ['image/jpeg', true, true],
    ['image/png', true, true],
    ['image/gif', true, true],
    ['image/webp', true, true],
    ['image/avif', true, true],
    ['image/heif', true, true],
    ['image/tiff', true, true],
    ['IMAGE/PNG', true, true],
    ['image/png; foo=bar', true, true],
    ['image/svg+xml', false, true],
    ['text/plain; charset=utf-8', false, false],
    ['application/octet-stream', false, false],
    ['video/mp4', false, false],
    ['', false, false],
  ])('%s: raster %s, image %s', (contentType, raster, image) => {
    expect(isRasterImageType(contentType)).toBe(raster);
    expect(isImageType(contentType)).toBe(image);
  });
});

describe('isXmlType', () => {
  it.each<[string, boolean]>([
    ['image/svg+xml', true],
    ['application/xml', true],
    ['text/xml; charset=utf-8', true],
    ['application/xhtml+xml', true],
    ['application/rss+xml', true],
    ['Application/XML', true],
    ['text/html; charset=utf-8', false],
    ['text/plain; charset=utf-8', false],
    ['application/json', false],
    ['application/xml-dtd', false],
    ['', false],
  ])('%s: %s', (contentType, xml) => {
    expect(isXmlType(contentType)).toBe(xml);
  });
});
