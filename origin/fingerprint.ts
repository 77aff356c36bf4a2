/**
 * Recognising fingerprinted file names (`app.3f9a2b1c.js`, `index-BqE8yL4k.css`): their content
 * never changes under the same name, so they are served as immutable for a year.
 */

/** A hex hash of 8–64 characters with at least one digit, between separators, before the extension. */
const HEX_HASH = /[.\-_~](?=[0-9a-f]*\d)[0-9a-f]{8,64}(?:\.[A-Za-z0-9]+)+$/;
/** A bundler-style base64url hash of exactly 8 characters mixing digits, upper and lower case. */
const BASE64_HASH = /[.\-_~](?=[A-Za-z0-9_]*\d)(?=[A-Za-z0-9_]*[A-Z])(?=[A-Za-z0-9_]*[a-z])[A-Za-z0-9_]{8}(?:\.[A-Za-z0-9]+)+$/;

export function isFingerprinted(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return HEX_HASH.test(name) || BASE64_HASH.test(name);
}
