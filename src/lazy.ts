/**
 * Code loaded when it is first needed, once. Loading its modules is most of what a server process
 * does before it can answer (on the 2-core reference machine, about 600 ms of CPU for an edge),
 * and every process of an edge with `workers: N` does it: what a process does not need before
 * its first answer, or does not need at all (a cluster worker never validates a config file), is
 * declared at the top of the module that uses it as `const x = lazy(() => import('./x.js'))` and
 * taken with `await x()` where it is used, so the module's static imports stay the list of what
 * it always loads.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => (loading ??= load());
}
