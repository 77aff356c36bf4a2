/**
 * Deterministic pseudo-random bytes (xorshift32, seeded), so that tests with large or many bodies
 * are reproducible and a body mixed up with another shows. Free of vitest, so helper processes a
 * test forks can use it too.
 */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
