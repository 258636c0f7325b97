import type { ObservedBridge__Output } from '../../generated/overlay/v1/ObservedBridge';
import type { ObservedTap__Output } from '../../generated/overlay/v1/ObservedTap';
import type { Port } from '../model/port';
import type { Segment } from '../model/segment';
import { MAX_OBSERVED_BRIDGES, MAX_OBSERVED_TAPS, readHostObservation } from './host-observation.intake';
import { observedStatus } from './host-observation.repository';

const tap = (portId: string, promiscuity = 1, bridged = true): ObservedTap__Output => ({ portId, promiscuity, bridged });
const bridge = (vni: number, ageingSeconds = 300): ObservedBridge__Output => ({ vni, ageingSeconds });
/** The host holds ports p1 and p2 (local), and segment s1 (VNI 5000). */
const scope = { isLocalPort: (id: string) => id === 'p1' || id === 'p2', segmentOf: (vni: number) => (vni === 5000 ? 's1' : undefined) };
const read = (taps: ObservedTap__Output[], bridges: ObservedBridge__Output[] = []) => readHostObservation({ taps, bridges, inventory: null }, scope, 42);

describe('reading an agent’s host observation', () => {
  it('keeps the taps of its local ports and the bridges of its span’s segments, stamped, and ignores the others', () => {
    expect(read([tap('p1', 2), tap('p9', 5), tap('p2', 0, false)], [bridge(5000, 0), bridge(6000, 0)])).toEqual({
      observation: {
        at: 42,
        taps: [
          { portId: 'p1', promiscuity: 2, bridged: true },
          { portId: 'p2', promiscuity: 0, bridged: false },
        ],
        bridges: [{ vni: 5000, segmentId: 's1', ageingSeconds: 0 }],
        inventory: null,
      },
    });
  });

  it.each([
    ['too many taps', Array.from({ length: MAX_OBSERVED_TAPS + 1 }, (_, i) => tap(`p${i}`)), [], /4097 taps \(at most 4096\)/],
    ['too many bridges', [], Array.from({ length: MAX_OBSERVED_BRIDGES + 1 }, (_, i) => bridge(i + 1)), /4097 bridges \(at most 4096\)/],
    ['an empty port id', [tap('')], [], /tap 0: port_id is not a port id/],
    ['an overlong port id', [tap('p'.repeat(65))], [], /port_id is not a port id \(1-64 characters\)/],
    ['a port twice', [tap('p1'), tap('p1')], [], /tap 1: port p1 reported twice/],
    ['a promiscuity that is not a count', [tap('p1', -1)], [], /promiscuity is not a count/],
    ['VNI 0', [], [bridge(0)], /bridge 0: VNI 0 out of range/],
    ['a VNI past 24 bits', [], [bridge(16_777_216)], /VNI 16777216 out of range/],
    ['a VNI twice', [], [bridge(5000), bridge(5000)], /bridge 1: VNI 5000 reported twice/],
    ['an ageing that is not a number', [], [bridge(5000, Number.NaN)], /ageing_seconds is not/],
  ])('refuses %s', (_name, taps, bridges, reason) => {
    const result = read(taps, bridges);
    expect('violation' in result && result.violation).toMatch(reason);
  });

  it('accepts 4096 taps and 4096 bridges, foreign ones included, and ids of 64 characters', () => {
    const result = read(
      Array.from({ length: MAX_OBSERVED_TAPS }, (_, i) => tap(i === 0 ? 'p'.repeat(64) : `p${i}`)),
      Array.from({ length: MAX_OBSERVED_BRIDGES }, (_, i) => bridge(i + 4000)),
    );
    expect('observation' in result && [result.observation.taps.length, result.observation.bridges.length]).toEqual([2, 1]);
  });
});

describe('a host observation as the host API shows it', () => {
  const port = (id: string, role?: 'vm' | 'analyzer') => [id, { id, ...(role ? { role } : {}) } as Port] as const;
  const view = { ports: new Map([port('p1'), port('p2', 'analyzer'), port('p3', 'vm'), port('p4')]), segments: new Map([['s1', { id: 's1', vni: 5000 } as Segment], ['s2', { id: 's2', vni: 5001 } as Segment]]) };

  it('lists the ports promiscuous beyond their bridge, with their role, and the segments in hub mode', () => {
    const status = observedStatus(
      {
        at: Date.UTC(2026, 0, 1),
        taps: [
          { portId: 'p1', promiscuity: 1, bridged: true }, // its bridge's: not listed
          { portId: 'p2', promiscuity: 1, bridged: false }, // an analyzer: listed, with its role
          { portId: 'p3', promiscuity: 2, bridged: true },
          { portId: 'p4', promiscuity: 0, bridged: false },
          { portId: 'gone', promiscuity: 3, bridged: false }, // deleted since: left out
        ],
        bridges: [
          { vni: 5000, segmentId: 's1', ageingSeconds: 0 },
          { vni: 5001, segmentId: 's2', ageingSeconds: 300 },
          { vni: 5002, segmentId: 's-gone', ageingSeconds: 0 },
        ],
        inventory: null,
      },
      view,
    );
    expect(status).toEqual({
      at: '2026-01-01T00:00:00.000Z',
      promiscuousPorts: [
        { portId: 'p2', role: 'analyzer', promiscuity: 1 },
        { portId: 'p3', role: 'vm', promiscuity: 2 },
      ],
      hubSegments: [{ segmentId: 's1', vni: 5000 }],
      inventory: null,
    });
  });
});
