import { readFileSync } from 'node:fs';

/**
 * Summarises a V8 heap snapshot (`.heapsnapshot`, as `node --heapsnapshot-signal` or
 * `v8.writeHeapSnapshot()` writes it) without Chrome DevTools: self size by constructor, and the
 * objects that retain the most (dominator tree, as DevTools computes "retained size"), each with
 * the property path that holds it.
 *
 *   node --max-old-space-size=8192 dist/bench/heap-summary.js file.heapsnapshot [top]
 */

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapSummary {
  totalBytes: number;
  nodes: number;
  byConstructor: { name: string; count: number; selfBytes: number }[];
  retainers: { path: string; name: string; retainedBytes: number }[];
}

export function summarise(file: string, top = 25): HeapSummary {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { meta } = snap.snapshot;
  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSelf = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const WEAK = edgeTypes.indexOf('weak');
  const SHORTCUT = edgeTypes.indexOf('shortcut');
  const ELEMENT = edgeTypes.indexOf('element');
  const HIDDEN = edgeTypes.indexOf('hidden');
  const { nodes, edges, strings } = snap;
  const n = nodes.length / NF;

  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += nodes[i * NF + nEdges] * EF;
    firstEdge[i + 1] = e;
  }
  const label = (i: number): string => {
    const type = nodeTypes[nodes[i * NF + nType]];
    const name = strings[nodes[i * NF + nName]];
    return type === 'object' || type === 'native' ? name : `(${type})`;
  };

  // Self size by constructor.
  const byName = new Map<string, { count: number; selfBytes: number }>();
  let totalBytes = 0;
  for (let i = 0; i < n; i++) {
    const self = nodes[i * NF + nSelf];
    totalBytes += self;
    const key = label(i);
    const entry = byName.get(key) ?? { count: 0, selfBytes: 0 };
    entry.count++;
    entry.selfBytes += self;
    byName.set(key, entry);
  }

  // Dominators (Cooper, Harvey, Kennedy), on strong edges from the root (node 0).
  const postOrder = new Int32Array(n).fill(-1);
  const order: number[] = [];
  const visited = new Uint8Array(n);
  const stack: number[] = [0];
  const edgeCursor = new Uint32Array(n);
  visited[0] = 1;
  edgeCursor[0] = firstEdge[0];
  while (stack.length) {
    const v = stack[stack.length - 1];
    let pushed = false;
    while (edgeCursor[v] < firstEdge[v + 1]) {
      const e = edgeCursor[v];
      edgeCursor[v] += EF;
      const t = edges[e + eType];
      if (t === WEAK || t === SHORTCUT) {
        continue;
      }
      const w = edges[e + eTo] / NF;
      if (!visited[w]) {
        visited[w] = 1;
        edgeCursor[w] = firstEdge[w];
        stack.push(w);
        pushed = true;
        break;
      }
    }
    if (!pushed && stack[stack.length - 1] === v) {
      stack.pop();
      postOrder[v] = order.length;
      order.push(v);
    }
  }
  const preds: number[][] = new Array(n);
  for (let v = 0; v < n; v++) {
    if (!visited[v]) {continue;}
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
      const t = edges[e + eType];
      if (t === WEAK || t === SHORTCUT) {continue;}
      const w = edges[e + eTo] / NF;
      (preds[w] ??= []).push(v);
    }
  }
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (postOrder[a] < postOrder[b]) {a = idom[a];}
      while (postOrder[b] < postOrder[a]) {b = idom[b];}
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = order.length - 2; k >= 0; k--) {
      const v = order[k];
      let dom = -1;
      for (const p of preds[v] ?? []) {
        if (idom[p] === -1) {continue;}
        dom = dom === -1 ? p : intersect(p, dom);
      }
      if (dom !== -1 && idom[v] !== dom) {
        idom[v] = dom;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(n);
  for (const v of order) {
    retained[v] += nodes[v * NF + nSelf];
    if (v !== 0 && idom[v] >= 0) {retained[idom[v]] += retained[v];}
  }

  // The edge that holds each node from its dominator (for a readable path).
  const edgeName = (from: number, to: number): string => {
    for (let e = firstEdge[from]; e < firstEdge[from + 1]; e += EF) {
      if (edges[e + eTo] / NF === to) {
        const t = edges[e + eType];
        return t === ELEMENT || t === HIDDEN ? `[${edges[e + eName]}]` : String(strings[edges[e + eName]]);
      }
    }
    return '?';
  };
  // A retaining path: from each node, the first object that holds it by a strong edge, up to four steps.
  const holderOf = (v: number): number => {
    const ps = preds[v] ?? [];
    return ps.find((p) => nodeTypes[nodes[p * NF + nType]] !== 'synthetic' && !label(p).startsWith('system /')) ?? ps[0] ?? 0;
  };
  const pathOf = (v: number): string => {
    const parts: string[] = [];
    for (let x = v, depth = 0; x !== 0 && depth < 4; depth++) {
      const h = holderOf(x);
      parts.unshift(`${label(h)}.${edgeName(h, x)}`);
      x = h;
    }
    return parts.join(' > ');
  };
  // Largest retainers that are not (system) roots, and not simply the sole child of a bigger one.
  const candidates = order.filter((v) => v !== 0 && !label(v).startsWith('(GC roots') && nodeTypes[nodes[v * NF + nType]] !== 'synthetic');
  candidates.sort((a, b) => retained[b] - retained[a]);
  const retainers: HeapSummary['retainers'] = [];
  for (const v of candidates) {
    if (retainers.length >= top) {break;}
    // A node that is nearly all of what its dominator retains is shown through it (chains of
    // promise reactions, a Map's table under the Map...); a GC root's children are shown themselves.
    const d = idom[v];
    if (d !== 0 && nodeTypes[nodes[d * NF + nType]] !== 'synthetic' && retained[v] > 0.9 * retained[d]) {continue;}
    retainers.push({ path: pathOf(v), name: label(v), retainedBytes: retained[v] });
  }
  return {
    totalBytes,
    nodes: n,
    byConstructor: [...byName].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.selfBytes - a.selfBytes).slice(0, top),
    retainers,
  };
}

export function printSummary(s: HeapSummary, indent = '  '): void {
  const mb = (b: number): string => `${(b / 1e6).toFixed(1).padStart(7)} MB`;
  console.log(`${indent}heap snapshot: ${mb(s.totalBytes)} in ${s.nodes.toLocaleString('en-US')} objects`);
  console.log(`${indent}self size by constructor:`);
  for (const c of s.byConstructor) {
    console.log(`${indent}  ${mb(c.selfBytes)}  ${c.count.toLocaleString('en-US').padStart(10)}  ${c.name.slice(0, 60)}`);
  }
  console.log(`${indent}largest retainers (retained size, dominator path):`);
  for (const r of s.retainers) {
    console.log(`${indent}  ${mb(r.retainedBytes)}  ${r.name.slice(0, 30)}  ${r.path.slice(0, 160)}`);
  }
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/heap-summary.js <file.heapsnapshot> [top]');
    process.exit(2);
  }
  printSummary(summarise(file, Number(top ?? 25)));
}
