/**
 * Buffers that disk hits are read into and used again once their bytes are written. A packed body
 * (≤ 64 KiB) read into a fresh Buffer for every hit is a fresh ArrayBuffer outside V8's heap per
 * hit, and V8 answers that much external memory with major GCs: measured with one 50 KiB object
 * under `wrk -c64`, one process made up to 62 mark-compacts in 12 s of hits, and 2 (at start)
 * reading into memory it reuses, with less CPU per hit (BENCHMARKS.md).
 *
 * A buffer is lent by take() and comes back by give() once the socket has written it (the quick
 * front's write callback). One that never comes back (a path that does not give it back) is
 * simply collected; one given back twice is taken back once. At most `maxFree` wait to be reused,
 * so the pool holds at most maxFree × (headroom + size) bytes, whatever the objects.
 *
 * Each lent buffer starts `headroom` bytes into its memory: the borrower may write there (and
 * into any bytes of the buffer it no longer needs) to put a response head right before a body, so
 * that head and body leave in one write (src/serve/quick-front.ts).
 */
/**
 * On memory a pool lent and that has not come back: that pool (what give() and roomBefore() check).
 * Kept on the memory itself, a property store per loan: a WeakSet of lent memory hashed each
 * buffer in at take(), looked up at roomBefore() and out at give(), three hash-table operations per
 * disk hit, and rehashed as loans churned (seen in perf profiles of disk hits). A buffer never
 * given back is collected with its mark.
 */
const LENDER = Symbol('lender');
type Lendable = ArrayBufferLike & { [LENDER]?: ReadBuffers | undefined };

export class ReadBuffers {
  private readonly free: Lendable[] = [];

  constructor(
    /** Bytes per buffer: the largest read taken from the pool. */
    readonly size: number,
    private readonly maxFree: number,
    /** Bytes before each lent buffer that are the borrower's to write (roomBefore). */
    readonly headroom = 0,
  ) {}

  /** A buffer of `length` bytes (≤ size) to read into; give() it (or any view of it) back once written. */
  take(length: number): Buffer {
    if (length > this.size) throw new RangeError(`read of ${length} bytes exceeds the pooled size ${this.size}`);
    const memory: Lendable = this.free.pop() ?? new ArrayBuffer(this.headroom + this.size);
    memory[LENDER] = this;
    return Buffer.from(memory, this.headroom, length);
  }

  /** `view`'s memory may be reused: nothing reads it any more. */
  give(view: Uint8Array): void {
    const memory: Lendable = view.buffer;
    if (memory[LENDER] !== this) return;
    memory[LENDER] = undefined; // not `delete`: the memory keeps its shape from loan to loan
    if (this.free.length < this.maxFree) this.free.push(memory);
  }

  /**
   * The bytes right before `view` that its borrower may overwrite: all of them from the start of
   * its memory, when `view` lies in a buffer lent by this pool and not yet given back; else 0.
   */
  roomBefore(view: Uint8Array): number {
    return (view.buffer as Lendable)[LENDER] === this ? view.byteOffset : 0;
  }

  /** Buffers waiting to be reused. */
  get idle(): number {
    return this.free.length;
  }
}
