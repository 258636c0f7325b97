import type { TrackedConnection } from '../../common/tracked-connection';
import { acceptedConnections } from './connection-handover';

const c = (over: Partial<TrackedConnection>): TrackedConnection => ({ protocol: 6, src: '10.0.0.5', dst: '10.0.0.9', srcPort: 40000, dstPort: 22, tcpState: 'ESTABLISHED', timeoutSeconds: 300, seenReply: true, assured: true, ...over });

describe('acceptedConnections', () => {
  const port = new Set(['10.0.0.5', 'fd00::5']);

  it('keeps the port\u2019s carriable connections, either way round, and counts the rest', () => {
    const good = [c({}), c({ src: '10.0.0.9', dst: '10.0.0.5', srcPort: 50000, dstPort: 80 }), c({ src: 'fd00::5', dst: 'fd00::9' }), c({ protocol: 17, tcpState: '', seenReply: false, assured: false })];
    const bad = [
      c({ src: '10.0.0.6' }), // neither end is the port
      c({ src: '10.0.0.05' }), // not canonical
      c({ src: 'FD00::5', dst: 'fd00::9' }), // not canonical (upper case)
      c({ dst: 'fd00::9' }), // two families
      c({ tcpState: 'CLOSE' }),
      c({ protocol: 132 }),
      c({ dstPort: 65536 }),
      c({ timeoutSeconds: 0 }),
    ];
    expect(acceptedConnections([...good, ...bad], port)).toEqual({ accepted: good, rejected: bad.length });
  });
});
