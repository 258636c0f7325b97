import { FakeKernel } from './fake-kernel';

describe('FakeKernel', () => {
  it('stops a batch at the first line that fails, after the lines before it, as iproute2 does', async () => {
    const kernel = new FakeKernel();
    await expect(kernel.run('ip', ['-batch', '-'], 'link add name br1 type bridge\nlink set dev nope up\nlink set dev br1 up\n')).rejects.toThrow(
      'ip -batch - exited with status 1: Cannot find device "nope"\nCommand failed -:2',
    );
    expect(kernel.links.get('br1')).toEqual({ ifindex: 1, ifname: 'br1', kind: 'bridge', up: false });
  });

  it('loads nft text as one transaction: a failing load changes nothing', async () => {
    const kernel = new FakeKernel();
    kernel.sh('nft table bridge t');
    await expect(kernel.run('nft', ['-f', '-'], 'delete table bridge t\ntable bridge u {\n\tchain c {\n\t\tdrop\n\t}\n}\nflush set bridge u missing\n')).rejects.toThrow(/No such file or directory/);
    expect([...kernel.nft.keys()]).toEqual(['bridge t']);
  });

  it('releases a bridge’s ports and drops a shared tc block with its last binding when links go', () => {
    const kernel = new FakeKernel().addVeth('tap1', { up: true });
    ['ip link add name br1 type bridge', 'ip link set dev tap1 master br1', 'tc qdisc add dev tap1 egress_block 9 clsact', 'tc filter replace block 9 egress pref 1 handle 1 bpf da bytecode "1,6 0 0 0"'].forEach((c) => kernel.sh(c));
    kernel.learn('tap1', '02:00:00:00:00:01');
    kernel.sh('ip link del dev br1');
    expect(kernel.links.get('tap1')).toEqual({ ifindex: 1, ifname: 'tap1', kind: 'veth', up: true });
    expect(kernel.fdb).toEqual([]);
    kernel.sh('tc qdisc del dev tap1 clsact');
    expect(kernel.filters.size).toBe(0);
    expect(() => kernel.sh('tc filter replace block 9 egress pref 1 handle 1 bpf da bytecode "1,6 0 0 0"')).toThrow(/Block of given index was not found/);
  });

  it('refuses a command it does not know, so a spec notices it', async () => {
    await expect(new FakeKernel().run('ip', ['route', 'show'])).rejects.toThrow('fake kernel: unexpected command: ip route show');
  });
});
