import type { TrackedConnection } from '../dataplane';
import { connectionKey, isCarriable } from '../../../common/tracked-connection';
import { insertLine, parseConntrackList } from './conntrack-text';

// Recorded from conntrack v1.4.7 (`conntrack -L -w 7 ...`) on Linux 6.18.
const LISTED = `tcp      6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] mark=0 zone=7 use=1
udp      17 29 src=10.0.0.3 dst=10.0.0.1 sport=53 dport=5353 [UNREPLIED] src=10.0.0.1 dst=10.0.0.3 sport=5353 dport=53 mark=0 zone=7 use=1
tcp      6 99 SYN_SENT src=fd00::1 dst=fd00::2 sport=40001 dport=443 [UNREPLIED] src=fd00::2 dst=fd00::1 sport=443 dport=40001 mark=0 zone=7 use=1
tcp      6 99 TIME_WAIT src=10.0.0.1 dst=10.0.0.9 sport=1 dport=2 src=10.0.0.9 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 zone=7 use=1
tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=198.51.100.7 sport=40002 dport=443 src=198.51.100.7 dst=192.0.2.1 sport=443 dport=40002 [ASSURED] mark=0 zone=7 use=1
icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 zone=7 use=1
conntrack v1.4.7 (conntrack-tools): 6 flow entries have been shown.`;

const conn = (c: Partial<TrackedConnection>): TrackedConnection => ({ protocol: 6, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, tcpState: 'ESTABLISHED', timeoutSeconds: 99, seenReply: true, assured: true, ...c });

describe('conntrack text', () => {
  it('parses TCP in a carried state and UDP, leaving out closing, NAT-rewritten and other entries', () => {
    expect(parseConntrackList(LISTED)).toEqual([
      conn({}),
      { protocol: 17, src: '10.0.0.3', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, tcpState: '', timeoutSeconds: 29, seenReply: false, assured: false },
      conn({ src: 'fd00::1', dst: 'fd00::2', srcPort: 40001, dstPort: 443, tcpState: 'SYN_SENT', seenReply: false, assured: false }),
    ]);
  });

  it('survives garbage: truncated lines, bad numbers, odd tokens', () => {
    const garbage = ['tcp 6', 'tcp 6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=0 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=0', 'udp 17 x src=1.2.3.4', '', '\u0000', 'tcp 17 9 src=a'].join('\n');
    expect(parseConntrackList(garbage)).toEqual([]);
  });

  it('renders a load-file line per connection, with the status bits it had', () => {
    expect(insertLine(7, conn({}))).toBe('-I -w 7 -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 --state ESTABLISHED -t 99 -u SEEN_REPLY,ASSURED');
    expect(insertLine(9, conn({ protocol: 17, tcpState: '', seenReply: false, assured: false }))).toBe('-I -w 9 -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -t 99');
  });

  it('accepts only what it can render safely: nothing but the expected options can reach a load file', () => {
    expect(isCarriable(conn({}))).toBe(true);
    for (const bad of [
      conn({ src: '10.0.0.1 -F' }),
      conn({ dst: '10.0.0.2\n-F' }),
      conn({ dst: 'fd00::2' }),
      conn({ src: 'fe80::1%eth0', dst: 'fe80::2' }),
      conn({ srcPort: 0 }),
      conn({ dstPort: 70_000 }),
      conn({ tcpState: 'ESTABLISHED -F' }),
      conn({ tcpState: 'TIME_WAIT' }),
      conn({ protocol: 1 }),
      conn({ protocol: 17 }),
      conn({ timeoutSeconds: 0 }),
      conn({ timeoutSeconds: 432_001 }),
      conn({ timeoutSeconds: 1.5 }),
    ]) {
      expect(isCarriable(bad)).toBe(false);
    }
    expect(connectionKey(conn({}))).toBe('6 10.0.0.1 40000 10.0.0.2 80');
  });
});
