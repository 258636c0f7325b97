import { readdirSync } from 'node:fs';
import { CommandError, commandEnv, MAX_WATCHED_LINE, OUTPUT_PIECE_BYTES, ProcessCommandRunner } from './command-runner';

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

  describe("a command's output", () => {
    // 20,000 lines written one by one, as iproute2 writes what it lists: more than a pipe holds.
    const MANY = 'i=0; while [ $i -lt 20000 ]; do echo "entry $i"; i=$((i+1)); done';
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    /** The open descriptors once back to `count` (a failed spawn's pipes close a tick later), or as they are after 5 s. */
    async function fdsBackTo(count: number): Promise<number> {
      for (const deadline = Date.now() + 5_000; openFds() !== count && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return openFds();
    }

    it('comes whole, however it was written, and leaves no file open', async () => {
      const runner = new ProcessCommandRunner();
      const before = openFds();
      const outs = await Promise.all([1, 2, 3].map(() => runner.run('sh', ['-c', MANY])));
      for (const out of outs) {
        const lines = out.split('\n');
        expect(lines).toHaveLength(20_001);
        expect(lines[0]).toBe('entry 0');
        expect(lines[19_999]).toBe('entry 19999');
      }
      expect(await fdsBackTo(before)).toBe(before);
    });

    it('read from a pipe when no file can be made, the same', async () => {
      const saved = process.env.TMPDIR;
      process.env.TMPDIR = '/nonexistent/overlay-agent-test';
      try {
        const out = await new ProcessCommandRunner().run('sh', ['-c', MANY]);
        expect(out.split('\n')).toHaveLength(20_001);
      } finally {
        if (saved === undefined) {
          delete process.env.TMPDIR;
        } else {
          process.env.TMPDIR = saved;
        }
      }
    });

    it('comes in pieces when asked, in order, each about OUTPUT_PIECE_BYTES (a character split between two reads goes whole to the second), from a file or a pipe', async () => {
      // 'é' (2 bytes) after an odd number of ASCII bytes: the pieces' byte boundaries fall inside characters.
      const script = `printf a; i=0; while [ $i -lt 60000 ]; do printf '\\303\\251'; i=$((i+1)); done; echo; ${MANY}`;
      const whole = await new ProcessCommandRunner().run('sh', ['-c', script]);
      expect(whole.length).toBeGreaterThan(2 * OUTPUT_PIECE_BYTES);
      const saved = process.env.TMPDIR;
      for (const tmp of [saved, '/nonexistent/overlay-agent-test']) {
        process.env.TMPDIR = tmp;
        const pieces: string[] = [];
        try {
          await new ProcessCommandRunner().runInPieces('sh', ['-c', script], (piece) => pieces.push(piece));
        } finally {
          if (saved === undefined) {
            delete process.env.TMPDIR;
          } else {
            process.env.TMPDIR = saved;
          }
        }
        expect(pieces.join('')).toBe(whole);
        expect(pieces.length).toBeGreaterThan(2);
        expect(pieces.every((p) => p.length > 0 && Buffer.byteLength(p) <= OUTPUT_PIECE_BYTES + 3 && !p.includes('\ufffd'))).toBe(true);
      }
    });

    it('in pieces, fails as run does (nothing given), and with what the consumer throws, as it is; no file left open', async () => {
      const runner = new ProcessCommandRunner();
      const before = openFds();
      const given: string[] = [];
      const failed = await runner.runInPieces('sh', ['-c', 'echo partial; exit 3'], (p) => given.push(p)).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(CommandError);
      expect(given).toEqual([]);
      const refused = new Error('not a listing');
      await expect(runner.runInPieces('sh', ['-c', MANY], () => {
        throw refused;
      })).rejects.toBe(refused);
      expect(await fdsBackTo(before)).toBe(before);
    });

    it('and its failures: the status and stderr of one that fails, a command that cannot start; no file left open', async () => {
      const runner = new ProcessCommandRunner();
      const before = openFds();
      const failed = await runner.run('sh', ['-c', 'echo partial; echo "it broke" >&2; exit 3']).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(CommandError);
      expect(failed).toMatchObject({ exitCode: 3, stderr: 'it broke' });
      await expect(runner.run('/nonexistent/overlay-agent-command', [])).rejects.toThrow(/ENOENT/);
      expect(await fdsBackTo(before)).toBe(before);
    });
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
