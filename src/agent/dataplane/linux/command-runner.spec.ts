import { commandEnv, ProcessCommandRunner } from './command-runner';

describe('the commands the agent runs', () => {
  it("run without the agent's allocator preload, with the rest of its environment", () => {
    const env = { PATH: '/usr/sbin:/usr/bin', LD_PRELOAD: 'libjemalloc.so.2', MALLOC_CONF: 'background_thread:true', OVERLAY_HOST: 'hv1' };
    expect(commandEnv(env)).toEqual({ PATH: '/usr/sbin:/usr/bin', OVERLAY_HOST: 'hv1' });
    expect(env.LD_PRELOAD).toBe('libjemalloc.so.2'); // the agent's own is left alone
  });

  it('so a child process does not see them', async () => {
    const saved = { ...process.env };
    process.env.MALLOC_CONF = 'background_thread:true';
    process.env.OVERLAY_BENCH_MARK = 'kept';
    try {
      const out = await new ProcessCommandRunner().run('sh', ['-c', 'echo "[${MALLOC_CONF-unset}] [${OVERLAY_BENCH_MARK-unset}]"']);
      expect(out.trim()).toBe('[unset] [kept]');
    } finally {
      process.env = saved;
    }
  });
});
