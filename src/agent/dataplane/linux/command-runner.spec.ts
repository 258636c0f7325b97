import { commandEnv, MAX_WATCHED_LINE, ProcessCommandRunner } from './command-runner';

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

  describe("a watched command's lines", () => {
    async function linesOf(script: string, count: number): Promise<string[]> {
      const lines: string[] = [];
      const watch = new ProcessCommandRunner().watch('sh', ['-c', `${script}; sleep 30`], (line) => lines.push(line));
      try {
        for (const deadline = Date.now() + 10_000; lines.length < count && Date.now() < deadline; ) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        watch.stop();
      }
      return lines;
    }

    it('come whole when two reads split a character', async () => {
      // The two bytes of é written apart (the pause makes them two reads), then a line after.
      expect(await linesOf("printf 'caf\\303'; sleep 0.2; printf '\\251\\nnext\\n'", 2)).toEqual(['café', 'next']);
    });

    it('drop a line longer than the limit whole, and go on with the next', async () => {
      const long = MAX_WATCHED_LINE + 10;
      const lines = await linesOf(`printf 'first\\n'; head -c ${long} /dev/zero | tr '\\0' x; sleep 0.2; head -c ${long} /dev/zero | tr '\\0' y; printf 'tail\\nlast\\n'`, 2);
      expect(lines).toEqual(['first', 'last']);
    });
  });
});
