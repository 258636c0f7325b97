/** Adds `value` to the set under `key`, making the set when there is none. */
export function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

/** Removes `value` from the set under `key`, dropping the set when it empties. */
export function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set) {
    set.delete(value);
    if (set.size === 0) {
      map.delete(key);
    }
  }
}

/** Adds `delta` to the count of `inner` under `outer`, dropping counts that reach 0 and emptied inner maps. */
export function addCount<K, I>(counts: Map<K, Map<I, number>>, outer: K, inner: I, delta: number): void {
  let m = counts.get(outer);
  if (!m) {
    m = new Map();
    counts.set(outer, m);
  }
  const n = (m.get(inner) ?? 0) + delta;
  if (n > 0) {
    m.set(inner, n);
  } else {
    m.delete(inner);
    if (m.size === 0) {
      counts.delete(outer);
    }
  }
}
