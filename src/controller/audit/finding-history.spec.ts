import type { AuditReport } from './audit';
import type { Finding } from './audit.types';
import { diffFindings, withSince, type OpenFinding } from './finding-history';

const f = (id: string, evidence = `about ${id}`, severity: Finding['severity'] = 'high'): Finding => ({ id, severity, subject: { hostId: id }, evidence, since: null });
const report = (...findings: Finding[]): AuditReport => ({ generatedAt: '2026-01-01T00:00:00.000Z', revision: 7, recommendations: [{ id: 'VM-VN-R3', title: 't', status: 'fail', findings }] });
const open = (id: string, openedAt: number, evidence = `about ${id}`): OpenFinding => ({ id, recommendation: 'VM-VN-R3', severity: 'high', subject: { hostId: id }, evidence, openedAt });

describe('diffFindings', () => {
  it('opens what is new at now, keeps the opening time of what is found again, closes what is gone at now', () => {
    const before = new Map([['a', open('a', 100)], ['b', open('b', 200)]]);
    const { upserts, closed, current } = diffFindings(before, report(f('a'), f('c')), 1000);
    expect(upserts).toEqual([open('c', 1000)]);
    expect(closed).toEqual([{ ...open('b', 200), closedAt: 1000 }]);
    expect([...current.values()]).toEqual([open('a', 100), open('c', 1000)]);
  });

  it('rewrites a finding whose evidence or severity changed, keeping when it opened', () => {
    const before = new Map([['a', open('a', 100)]]);
    expect(diffFindings(before, report(f('a', 'new words')), 1000).upserts).toEqual([open('a', 100, 'new words')]);
    expect(diffFindings(before, report(f('a', 'about a', 'medium')), 1000).upserts).toEqual([{ ...open('a', 100), severity: 'medium' }]);
    expect(diffFindings(before, report(f('a')), 1000)).toEqual({ upserts: [], closed: [], current: before });
  });
});

describe('withSince', () => {
  it("gives each finding its opening time, null for one the history does not hold", () => {
    const out = withSince(report(f('a'), f('b')), new Map([['a', open('a', Date.parse('2026-01-01T00:00:05.000Z'))]]));
    expect(out.recommendations[0].findings.map((x) => [x.id, x.since])).toEqual([
      ['a', '2026-01-01T00:00:05.000Z'],
      ['b', null],
    ]);
  });
});
