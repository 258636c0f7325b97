import { timeOption } from './audit';
import { parseSink, parseSource } from './mirror-sessions';

describe('overlayctl argument parsers', () => {
  it('reads --since as ISO 8601 or a duration before now', () => {
    const at = timeOption(() => Date.parse('2025-01-31T12:00:00.000Z'));
    expect(at('90s')).toBe('2025-01-31T11:58:30.000Z');
    expect(at('2h')).toBe('2025-01-31T10:00:00.000Z');
    expect(at('7d')).toBe('2025-01-24T12:00:00.000Z');
    expect(at('2025-01-01T00:00:00Z')).toBe('2025-01-01T00:00:00Z');
    for (const bad of ['yesterday', '5w', '-1h', '2025-13-45T00:00:00Z', '']) {
      expect(() => at(bad)).toThrow('ISO 8601');
    }
  });

  it('reads --sink and --source', () => {
    expect(parseSink('port=p1')).toEqual({ type: 'port', portId: 'p1' });
    expect(parseSink('vxlan=2001:db8::1')).toEqual({ type: 'vxlan', remoteIp: '2001:db8::1' });
    expect(parseSink('uplink=h1/ens1f1')).toEqual({ type: 'uplink', hostId: 'h1', interface: 'ens1f1' });
    expect(parseSink('erspan=192.0.2.9/17')).toEqual({ type: 'erspan', remoteIp: '192.0.2.9', erspanId: 17 });
    for (const bad of ['port', 'uplink=h1', 'erspan=192.0.2.9/x', 'tap=x']) {
      expect(() => parseSink(bad)).toThrow('--sink');
    }
    expect(parseSource('p1')).toEqual({ portId: 'p1' });
    expect(parseSource('p1:egress')).toEqual({ portId: 'p1', direction: 'egress' });
    expect(() => parseSource('p1:out')).toThrow('--source');
  });
});
