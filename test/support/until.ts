/**
 * Waiting on another server's or process's progress by polling the condition itself, bounded:
 * a fixed sleep before an assertion fails on a loaded machine, where that progress comes late.
 */

/** Resolves once `check` holds; throws naming `what` after `timeoutMs` (default 10 s, room for a loaded 2-core CI). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, pollMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
