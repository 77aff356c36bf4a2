import { describe, expect, it } from 'vitest';
import { isFingerprinted } from '../../../origin/fingerprint.js';

describe('isFingerprinted', () => {
  it.each([
    'app.3f9a2b1c.js',
    'assets/index-BqE8yL4k.css',
    'vendor-DnK7aXcd.js',
    'main.0123456789abcdef0123.js',
    'img/hero.5d41402abc4b2a76b9719d911017c592.png',
    'chunk_a1b2c3d4.mjs',
  ])('%s is a fingerprinted name', (path) => {
    expect(isFingerprinted(path)).toBe(true);
  });

  // Names a publisher replaces under the same name: a year of immutable caching would be wrong.
  it.each([
    'photo-Summer24.jpg',
    'team-Europe24.png',
    'hero-Banner01.jpg',
    'cv-JohnDoe1.pdf',
    'logo-V2Final1.png',
    'data.20241231.json',
    'report-20241231.pdf',
    'photos/cat.jpg',
    'app.js',
    'style-v2.css',
  ])('%s is not', (path) => {
    expect(isFingerprinted(path)).toBe(false);
  });
});
