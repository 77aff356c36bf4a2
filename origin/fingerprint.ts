/**
 * Recognising fingerprinted file names (`app.3f9a2b1c.js`, `index-BqE8yL4k.css`): their content
 * never changes under the same name, so they are served as immutable for a year. A false
 * positive is the costly mistake (a publisher replaces `photo-Summer24.jpg` and browsers keep the
 * old one for a year), so names that read as words or dates are not hashes; a hash missed only
 * gets the default lifetime.
 */

/** A hex hash of 8–64 characters with a digit and a letter (not a date), between separators, before the extension. */
const HEX_HASH = /[.\-_~](?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,64}(?:\.[A-Za-z0-9]+)+$/;
/** A bundler-style base64url hash of exactly 8 characters mixing digits, upper and lower case. */
const BASE64_HASH = /[.\-_~]((?=[A-Za-z0-9_]*\d)(?=[A-Za-z0-9_]*[A-Z])(?=[A-Za-z0-9_]*[a-z])[A-Za-z0-9_]{8})(?:\.[A-Za-z0-9]+)+$/;
/** Letters between digits that read as words: `Summer`, `JohnDoe`, `V` + `Final`. */
const WORDS = /^(?:[A-Z]?[a-z]{2,}|[A-Z](?![a-z]))+$/;

export function isFingerprinted(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (HEX_HASH.test(name)) return true;
  const token = BASE64_HASH.exec(name)?.[1];
  return token !== undefined && !wordLike(token);
}

function wordLike(token: string): boolean {
  return token.split(/[\d_]+/).filter((part) => part !== '').every((part) => WORDS.test(part));
}
