import { mirrorTapId } from '../../common/span/mirror.kind';
import { spanKey, type SpanKey, type SpanRun } from '../../common/span/span-kind';
import type { MirrorSession } from '../model/mirror-session';
import { sinkHostId, sinkOf, tapsOf } from './resources/mirror.resource';
import { addTo, removeFrom } from './set-map';
import type { HostSpanChange } from './span-diff';
import type { SpanSource } from './span-source';

/**
 * The mirror part of a host's span, indexed. Pure: no I/O, no clock.
 *
 * For each enabled mirror session, every local host of each bound source port (where it is bound,
 * and a prepared migration's destination) holds `mirror/<sessionId>/<portId>`, a MirrorTap whose
 * sink is resolved from that host: a local analyzer port or uplink, else a tunnel to the sink
 * host's VTEP (or the VXLAN collector). The sink's host holds `mirrorSink/<sessionId>`. See
 * resources/mirror.resource.ts for the one definition of both.
 *
 * A mirror resource depends on its session's record, its source port's binding and migration,
 * a port sink's binding, and the VTEP (and existence) of the sink's host. The index answers
 * which sessions a touched port or host can change (`sessionsOfPort`, `sessionsSinkingOn`), so a
 * record that touches none of those costs a few map lookups. `mirrorChanges` then compares the
 * affected sessions' resources in the state before and after: the live path (one record) and
 * resume (every record since the agent's revision) both go through it, so they cannot disagree.
 */
export class MirrorIndex {
  /** Port -> sessions naming it (as a source or as the sink); every session, enabled or not. */
  private readonly byPort = new Map<string, Set<string>>();
  /** Session -> the ports indexed for it (to unindex a session whose record changed). */
  private readonly portsOf = new Map<string, string[]>();
  /** Session -> the host its sink sits on (`sinkHostId`), when it has one. */
  private readonly sinkHost = new Map<string, string>();
  /** Host -> sessions whose sink sits on it. */
  private readonly bySinkHost = new Map<string, Set<string>>();

  /** `source` is the current state (the SpanIndex over the view). */
  constructor(private readonly source: SpanSource & { mirrorSessionIds(): Iterable<string> }) {
    for (const id of source.mirrorSessionIds()) {
      this.reference(id);
      this.place(id);
    }
  }

  sessionsOfPort(portId: string): ReadonlySet<string> {
    return this.byPort.get(portId) ?? NONE;
  }

  sessionsSinkingOn(hostId: string): ReadonlySet<string> {
    return this.bySinkHost.get(hostId) ?? NONE;
  }

  /**
   * Updates the index for a record already applied to the state: sessions it wrote are indexed
   * again by their ports, and sessions whose sink may have moved (those it wrote, those naming a
   * port it wrote) are placed again. O(the record's ops + the sessions they name).
   */
  update(touched: { sessions: Iterable<string>; ports: Iterable<string> }): void {
    const replace = new Set(touched.sessions);
    for (const id of replace) {
      this.reference(id);
    }
    for (const port of touched.ports) {
      this.sessionsOfPort(port).forEach((id) => replace.add(id));
    }
    for (const id of replace) {
      this.place(id);
    }
  }

  /** The mirror part of the host's span, given its local ports: the taps of its ports, and the sinks on it. */
  spanRuns(hostId: string, portsOnHost: Iterable<string>): SpanRun[] {
    const taps = new Set<string>();
    for (const portId of portsOnHost) {
      const ids = this.byPort.get(portId);
      if (!ids) {
        continue;
      }
      const only = [portId];
      for (const id of ids) {
        for (const placed of tapsOf(this.source, this.source.mirrorSession(id)!, only)) {
          if (placed.hostId === hostId) {
            taps.add(mirrorTapId(id, portId));
          }
        }
      }
    }
    const sinks: string[] = [];
    for (const id of this.sessionsSinkingOn(hostId)) {
      if (sinkOf(this.source, this.source.mirrorSession(id)!)?.hostId === hostId) {
        sinks.push(id);
      }
    }
    return [
      { kind: 'mirror', ids: [...taps] },
      { kind: 'mirrorSink', ids: sinks },
    ];
  }

  private reference(id: string): void {
    for (const port of this.portsOf.get(id) ?? []) {
      removeFrom(this.byPort, port, id);
    }
    const session = this.source.mirrorSession(id);
    if (!session) {
      this.portsOf.delete(id);
      return;
    }
    const ports = portsNamedBy(session);
    this.portsOf.set(id, ports);
    for (const port of ports) {
      addTo(this.byPort, port, id);
    }
  }

  private place(id: string): void {
    const old = this.sinkHost.get(id);
    const session = this.source.mirrorSession(id);
    const host = session && sinkHostId(this.source, session);
    if (old === host) {
      return;
    }
    if (old !== undefined) {
      removeFrom(this.bySinkHost, old, id);
      this.sinkHost.delete(id);
    }
    if (host !== undefined) {
      addTo(this.bySinkHost, host, id);
      this.sinkHost.set(id, host);
    }
  }
}

const NONE: ReadonlySet<string> = new Set();

function portsNamedBy(session: MirrorSession): string[] {
  const ports = new Set(session.sources.map((s) => s.portId));
  if (session.sink.type === 'port') {
    ports.add(session.sink.portId);
  }
  return [...ports];
}

/** Per affected session: every resource of it ('all'), or only the taps of these source ports. */
export type MirrorScope = Map<string, 'all' | Set<string>>;

/**
 * The sessions whose resources the touched records may have changed, and how much of each.
 * `index` and `now` are the current state; a session whose ports or sink host differ between
 * then and now was itself touched, or its sink port was, so the current index finds every one.
 */
export function affectedSessions(index: MirrorIndex, now: SpanSource, touched: { sessions: Iterable<string>; ports: Iterable<string>; hosts: Iterable<string> }): MirrorScope {
  const scope: MirrorScope = new Map();
  for (const id of touched.sessions) {
    scope.set(id, 'all');
  }
  // A sink host's VTEP (or existence) is in every tap that tunnels to it, and decides its MirrorSink.
  for (const host of touched.hosts) {
    index.sessionsSinkingOn(host).forEach((id) => scope.set(id, 'all'));
  }
  for (const port of touched.ports) {
    for (const id of index.sessionsOfPort(port)) {
      const current = scope.get(id);
      if (current === 'all') {
        continue;
      }
      const sink = now.mirrorSession(id)?.sink;
      if (sink?.type === 'port' && sink.portId === port) {
        scope.set(id, 'all'); // the sink moved (or may have): every tap and the sink side
      } else if (current) {
        current.add(port);
      } else {
        scope.set(id, new Set([port]));
      }
    }
  }
  return scope;
}

/**
 * What changed in each host's mirror keys between `before` and `now` for the affected sessions:
 * their resources (in the scope) in both states, compared per host. O(the taps in scope). With
 * `onlyHost`, that host's changes only.
 */
export function mirrorChanges(before: SpanSource, now: SpanSource, scope: MirrorScope, changeOf: (host: string) => HostSpanChange, onlyHost?: string): void {
  for (const [id, ports] of scope) {
    const then = placed(before, id, ports);
    const current = placed(now, id, ports);
    for (const [host, keys] of then) {
      if (onlyHost !== undefined && host !== onlyHost) {
        continue;
      }
      const has = current.get(host);
      for (const key of keys.keys()) {
        if (!has?.has(key)) {
          changeOf(host).removals.add(key);
        }
      }
    }
    for (const [host, keys] of current) {
      if (onlyHost !== undefined && host !== onlyHost) {
        continue;
      }
      const had = then.get(host);
      for (const [key, text] of keys) {
        if (had?.get(key) !== text) {
          changeOf(host).upserts.add(key);
        }
      }
    }
  }
}

/** A session's resources in scope, by host: key -> its text (to compare). */
function placed(source: SpanSource, id: string, ports: 'all' | Set<string>): Map<string, Map<SpanKey, string>> {
  const out = new Map<string, Map<SpanKey, string>>();
  const session = source.mirrorSession(id);
  if (!session) {
    return out;
  }
  const put = (host: string, key: SpanKey, value: unknown) => {
    let keys = out.get(host);
    if (!keys) {
      keys = new Map();
      out.set(host, keys);
    }
    keys.set(key, JSON.stringify(value));
  };
  for (const { hostId, tap } of tapsOf(source, session, ports === 'all' ? undefined : ports)) {
    put(hostId, spanKey('mirror', mirrorTapId(id, tap.portId)), tap);
  }
  if (ports === 'all') {
    const sink = sinkOf(source, session);
    if (sink) {
      put(sink.hostId, spanKey('mirrorSink', id), sink.sink);
    }
  }
  return out;
}
