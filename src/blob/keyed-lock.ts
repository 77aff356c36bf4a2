/**
 * A per-key mutex: operations that change what is stored under one key (commit, metadata refresh,
 * delete, dropping a corrupt or evicted entry's files) run one at a time, in call order, while
 * different keys proceed in parallel. The table only holds keys with work queued.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Run `fn` after every earlier `run` for `key` has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with queued or running work. */
  get size(): number {
    return this.tails.size;
  }
}
