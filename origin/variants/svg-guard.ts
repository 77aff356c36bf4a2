/**
 * What an SVG may contain to be rasterised. The pixel limit sees only the SVG's declared size,
 * but librsvg also decodes images embedded in it (`<image href="data:…">`, `<feImage>`), pulls in
 * other documents (`<xi:include>`, `<use href="data:…">`) and expands entities — a 130 KB SVG
 * declaring 100×100 can carry a 10000×10000 PNG and make the renderer allocate gigabytes. So an
 * SVG with embedded (data:) images, includes, outside references or entity declarations is
 * refused for transforms (415, naming what was found); its original is still served, with the
 * script-forbidding policy. `<image>` pointing at files or URLs is harmless: rendering from
 * memory, librsvg loads none of them (tested). Element names cannot be written with character
 * references in XML, and a reference inside an image's address is refused, so the scan cannot be
 * hidden.
 */
import { unsupportedImage } from './image-errors.js';

/** Entity and DOCTYPE internal subsets (where entities are declared). */
const DECLARATIONS = /<!ENTITY|<!DOCTYPE[^>]*\[/i;
/** Elements that include other documents, with any namespace prefix. */
const INCLUDE = /<\s*(?:[A-Za-z_][\w.-]*:)?include[\s/>]/;
/** Image-loading elements with their attributes. */
const IMAGE_ELEMENTS = /<\s*(?:[A-Za-z_][\w.-]*:)?(image|feImage)\b([^>]*)>/g;
/** An address that is embedded data, or hides what it is behind a character reference. */
const EMBEDDED_HREF = /\bhref\s*=\s*(["'])\s*(?:data:|[^"']*&)/i;
/** `<use>` pointing anywhere but inside this document. */
const EXTERNAL_USE = /<\s*(?:[A-Za-z_][\w.-]*:)?use\b[^>]*\bhref\s*=\s*["']\s*[^"'#\s]/;

export function assertTransformableSvg(data: Buffer): void {
  const text = data.toString('utf8').replace(/<!--[\s\S]*?-->/g, '');
  if (DECLARATIONS.test(text)) throw unsupportedImage('an SVG that declares entities cannot be transformed (its original is served as is)');
  if (INCLUDE.test(text)) throw unsupportedImage('an SVG with <include> elements cannot be transformed (its original is served as is)');
  for (const m of text.matchAll(IMAGE_ELEMENTS)) {
    if (EMBEDDED_HREF.test(m[2]!)) throw unsupportedImage(`an SVG with an embedded <${m[1]}> cannot be transformed (its original is served as is)`);
  }
  if (EXTERNAL_USE.test(text)) throw unsupportedImage('an SVG whose <use> points outside the document cannot be transformed (its original is served as is)');
}
