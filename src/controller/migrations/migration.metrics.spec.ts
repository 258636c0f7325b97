import type { Migration } from '../model/migration';
import { stepDurations } from './migration.metrics';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();

describe('stepDurations', () => {
  it('times the steps up to the commit from the prepare, the acks after it from the commit, and the whole from the prepare', () => {
    const migration: Pick<Migration, 'state' | 'timeline'> = {
      state: 'completed',
      timeline: [
        { event: 'prepared', at: at(0) },
        { event: 'destination-acked', at: at(120) },
        { event: 'committed', at: at(5_000) },
        { event: 'source-cleaned', at: at(5_400) },
        { event: 'peers-acked', at: at(5_250) },
      ],
    };
    expect(stepDurations(migration)).toEqual([
      ['destination-acked', 0.12],
      ['committed', 5],
      ['source-cleaned', 0.4],
      ['peers-acked', 0.25],
      ['completed', 5.4],
    ]);
  });

  it('times an abort from the prepare, and nothing without a prepare', () => {
    expect(stepDurations({ state: 'aborted', timeline: [{ event: 'prepared', at: at(0) }, { event: 'aborted', at: at(2_500) }] })).toEqual([['aborted', 2.5]]);
    expect(stepDurations({ state: 'expired', timeline: [{ event: 'expired', at: at(1) }] })).toEqual([]);
  });
});
