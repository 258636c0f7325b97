import { MAX_FAILED_PORTS, MAX_PORT_REASON, nextPortFailures, parsePortFailures, readFailedPorts, samePortFailures } from './port-failures';

const local = (id: string) => id.startsWith('here-');

describe('readFailedPorts', () => {
  it("keeps the host's own ports with their reasons cleaned, and ignores the others", () => {
    const read = readFailedPorts(
      [
        { portId: 'here-1', reason: 'ip refused "link set dev tap1 up":\n\u001b[31mbusy\u202e' },
        { portId: 'elsewhere', reason: 'x' },
        { portId: 'here-2', reason: '' },
      ],
      local,
    );
    expect(read).toEqual({ ports: new Map([['here-1', 'ip refused "link set dev tap1 up": [31mbusy'], ['here-2', 'no reason given']]) });
  });

  it('cuts a long reason to MAX_PORT_REASON characters, saying so', () => {
    const read = readFailedPorts([{ portId: 'here-1', reason: 'x'.repeat(1024) }], local);
    const reason = 'ports' in read ? read.ports.get('here-1')! : '';
    expect(reason.startsWith('x'.repeat(MAX_PORT_REASON))).toBe(true);
    expect(reason.slice(MAX_PORT_REASON)).toBe('… (cut: 1024 characters in all)');
  });

  it.each([
    ['too many entries', Array.from({ length: MAX_FAILED_PORTS + 1 }, (_, i) => ({ portId: `here-${i}`, reason: '' })), `Ack with ${MAX_FAILED_PORTS + 1} failed ports (at most ${MAX_FAILED_PORTS})`],
    ['an empty port id', [{ portId: '', reason: '' }], 'Ack failed_ports[0]: port_id is not a port id (1-64 characters)'],
    ['a port id of 65 characters', [{ portId: 'here-'.padEnd(65, 'x'), reason: '' }], 'Ack failed_ports[0]: port_id is not a port id (1-64 characters)'],
    ['a port named twice', [{ portId: 'here-1', reason: 'a' }, { portId: 'here-1', reason: 'b' }], 'Ack failed_ports[1]: port here-1 named twice'],
    ['a reason of 1025 characters', [{ portId: 'elsewhere', reason: 'x'.repeat(1025) }], 'Ack failed_ports[0]: reason longer than 1024 characters'],
  ])('refuses %s (a protocol violation)', (_what, list, violation) => {
    expect(readFailedPorts(list, local)).toEqual({ violation });
  });
});

describe('nextPortFailures', () => {
  it('keeps the time a port started failing while it goes on failing, and starts a new one afresh', () => {
    const first = nextPortFailures(undefined, 5, new Map([['p1', 'a']]), 'T1');
    expect(first).toEqual({ revision: 5, ports: { p1: { reason: 'a', since: 'T1' } } });
    const second = nextPortFailures(first, 7, new Map([['p2', 'b'], ['p1', 'a2']]), 'T2');
    expect(second).toEqual({ revision: 7, ports: { p1: { reason: 'a2', since: 'T1' }, p2: { reason: 'b', since: 'T2' } } });
    expect(samePortFailures(first, nextPortFailures(first, 9, new Map([['p1', 'a']]), 'T3'))).toBe(true);
    expect(samePortFailures(first, second)).toBe(false);
    expect(samePortFailures(undefined, nextPortFailures(undefined, 1, new Map(), 'T'))).toBe(false);
  });

  it('reads back only what it stores', () => {
    expect(parsePortFailures(JSON.stringify({ revision: 3, ports: { p1: { reason: 'a', since: 'T' } } }))).toEqual({ revision: 3, ports: { p1: { reason: 'a', since: 'T' } } });
    expect(parsePortFailures('{"revision":"x"}')).toBeUndefined();
    expect(parsePortFailures('not json')).toBeUndefined();
    expect(parsePortFailures(null)).toBeUndefined();
  });
});
