/** Configuration values are frozen once parsed (src/config/load.ts) and wherever else one is made whole (a cluster worker's, edge/cluster-worker.ts). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
