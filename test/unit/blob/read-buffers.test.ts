/** The pool disk hits are read into: memory lent once at a time, taken back once, bounded. */
import { describe, expect, it } from 'vitest';
import { ReadBuffers } from '../../../src/blob/read-buffers.js';

describe('ReadBuffers', () => {
  it('lends views of the requested length and reuses memory given back', () => {
    const pool = new ReadBuffers(1024, 4);
    const a = pool.take(100);
    expect(a.length).toBe(100);
    expect(a.buffer.byteLength).toBe(1024);
    pool.give(a.subarray(24)); // any view of the lent memory gives it back
    expect(pool.idle).toBe(1);
    const b = pool.take(1024);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.idle).toBe(0);
  });

  it('never lends the same memory twice at once: a second give, or a give of memory it did not lend, is ignored', () => {
    const pool = new ReadBuffers(64, 4);
    const a = pool.take(64);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(64));
    expect(pool.idle).toBe(1);
    const b = pool.take(64);
    const c = pool.take(64);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(b.buffer);
  });

  it('lends each buffer `headroom` bytes into its memory, and says how much room lies before a view while it is lent', () => {
    const pool = new ReadBuffers(64, 4, 40);
    const a = pool.take(50);
    expect(a.buffer.byteLength).toBe(104);
    expect(a.byteOffset).toBe(40);
    expect(pool.roomBefore(a)).toBe(40);
    expect(pool.roomBefore(a.subarray(24))).toBe(64); // the bytes before a part of it are the borrower's too
    expect(pool.roomBefore(Buffer.alloc(64))).toBe(0); // not the pool's
    pool.give(a);
    expect(pool.roomBefore(a)).toBe(0); // given back: no longer the borrower's to write
  });

  it('keeps at most maxFree buffers idle, and refuses a read larger than its buffers', () => {
    const pool = new ReadBuffers(64, 2);
    const lent = [pool.take(1), pool.take(2), pool.take(3)];
    for (const view of lent) pool.give(view);
    expect(pool.idle).toBe(2);
    expect(() => pool.take(65)).toThrow(RangeError);
  });
});
