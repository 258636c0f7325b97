import { stepsFor } from './actions';

const kinds = (op: string, sub: string, extra = '-') => stepsFor(op, sub, extra).map((s) => (s.kind === 'close-outgoing' ? `${s.kind}:${s.close}` : s.kind));

describe('stepsFor: libvirt qemu hook operation -> the hook steps', () => {
  it.each([
    // destination, incoming migration
    ['migrate', 'begin', '-', ['prepare']],
    ['prepare', 'begin', '-', []],
    ['start', 'begin', '-', []],
    // called when QEMU started paused, before any memory is copied: not the migration's end
    ['started', 'begin', '-', []],
    // the incoming domain torn down (failure, cancel), or any domain stopping
    ['stopped', 'end', '-', ['abort-incoming']],
    ['release', 'end', 'failed', ['abort-incoming', 'close-outgoing:abort']],
    // source, after a successful migration
    ['release', 'end', 'migrated', ['abort-incoming', 'close-outgoing:commit']],
    // libvirt < 10.5.0: no reason
    ['release', 'end', '-', ['abort-incoming', 'close-outgoing:commit']],
    ['release', 'end', '', ['abort-incoming', 'close-outgoing:commit']],
    // the VM stopped on the source otherwise while a migration was open: it did not move
    ['release', 'end', 'shutdown', ['abort-incoming', 'close-outgoing:abort']],
    ['release', 'end', 'destroyed', ['abort-incoming', 'close-outgoing:abort']],
    ['release', 'end', 'crashed', ['abort-incoming', 'close-outgoing:abort']],
    ['release', 'end', 'saved', ['abort-incoming', 'close-outgoing:abort']],
    ['release', 'end', 'unknown', ['abort-incoming', 'close-outgoing:abort']],
    // nothing to do
    ['reconnect', 'begin', '-', []],
    ['attach', 'begin', '-', []],
    ['restore', 'begin', '-', []],
    ['migrate', 'end', '-', []],
    ['stopped', 'begin', '-', []],
    ['release', 'begin', '-', []],
    ['anything', 'else', '-', []],
  ])('%s %s %s -> %j', (op, sub, extra, expected) => {
    expect(kinds(op, sub, extra)).toEqual(expected);
  });

  it('says why a source-side close commits or aborts', () => {
    expect(stepsFor('release', 'end', 'migrated')[1]).toMatchObject({ close: 'commit', why: 'the domain migrated away' });
    expect(stepsFor('release', 'end', '-')[1]).toMatchObject({ close: 'commit', why: expect.stringContaining('10.5.0') });
    expect(stepsFor('release', 'end', 'destroyed')[1]).toMatchObject({ close: 'abort', why: expect.stringContaining('destroyed') });
  });
});
