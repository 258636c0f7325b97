import type { CommandRunner } from './command-runner';
import { LinkMonitor, linkOfMonitorLine } from './link-monitor';

/** `ip -o monitor link` lines as iproute2 6.1 prints them. */
const CREATED = '7: vnet3: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether fe:16:3e:00:00:05 brd ff:ff:ff:ff:ff:ff';
const VETH = '12: tapf4df10519f3@if11: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue master br1000 state LOWERLAYERDOWN group default \\    link/ether 4E:6A:10:22:33:44 brd ff:ff:ff:ff:ff:ff link-netns ovl-vm-a';
const DELETED = 'Deleted 7: vnet3: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether fe:16:3e:00:00:05 brd ff:ff:ff:ff:ff:ff';

describe('linkOfMonitorLine', () => {
  it('reads the name (without its peer) and the MAC of a link created or changed, and nothing of a deletion or another line', () => {
    expect(linkOfMonitorLine(CREATED)).toEqual({ name: 'vnet3', mac: 'fe:16:3e:00:00:05' });
    expect(linkOfMonitorLine(VETH)).toEqual({ name: 'tapf4df10519f3', mac: '4e:6a:10:22:33:44' });
    expect(linkOfMonitorLine(DELETED)).toBeUndefined();
    expect(linkOfMonitorLine('3: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default \\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00')).toBeUndefined();
    expect(linkOfMonitorLine('')).toBeUndefined();
  });
});

describe('LinkMonitor', () => {
  /** A runner whose one watch is driven by the spec (`emit`); `started` counts the monitors started. */
  function runner() {
    const lines: ((line: string) => void)[] = [];
    const fake: CommandRunner & { started: string[]; emit(line: string): void } = {
      started: [],
      run: async () => '',
      watch(cmd, args, onLine) {
        fake.started.push([cmd, ...args].join(' '));
        lines.push(onLine);
        return { stop: () => lines.splice(lines.indexOf(onLine), 1) };
      },
      emit: (line) => lines.forEach((l) => l(line)),
    };
    return fake;
  }

  it('starts no monitor while no tap is awaited, then one, kept while the sets change', () => {
    const kernel = runner();
    const monitor = new LinkMonitor(kernel);
    monitor.watch({ names: new Set(), macs: new Set() }, 0, () => undefined);
    expect(kernel.started).toEqual([]);
    monitor.watch({ names: new Set(['vnet3']), macs: new Set() }, 0, () => undefined);
    monitor.watch({ names: new Set(), macs: new Set() }, 0, () => undefined);
    monitor.watch({ names: new Set(['vnet4']), macs: new Set() }, 0, () => undefined);
    expect(kernel.started).toEqual(['ip -o monitor link']);
    monitor.close();
  });

  it('calls back when an awaited tap shows up, by name or by MAC, and not for another link or a deletion', () => {
    const kernel = runner();
    const monitor = new LinkMonitor(kernel);
    const appeared: string[] = [];
    monitor.watch({ names: new Set(['tapf4df10519f3']), macs: new Set(['fe:16:3e:00:00:05']) }, 0, () => appeared.push('now'));
    kernel.emit(DELETED);
    kernel.emit(CREATED.replace('fe:16:3e:00:00:05', 'fe:16:3e:00:00:06').replace('vnet3', 'vnet4'));
    expect(appeared).toEqual([]);
    kernel.emit(CREATED);
    kernel.emit(VETH);
    expect(appeared).toEqual(['now', 'now']);
    // No longer awaited: nothing.
    monitor.watch({ names: new Set(), macs: new Set() }, 0, () => appeared.push('again'));
    kernel.emit(VETH);
    expect(appeared).toEqual(['now', 'now']);
  });

  it('calls back at once for an awaited tap seen since the caller read the links, not for one seen before', () => {
    let now = 1_000;
    const kernel = runner();
    const monitor = new LinkMonitor(kernel, () => now);
    monitor.watch({ names: new Set(['other']), macs: new Set() }, 0, () => undefined);
    kernel.emit(CREATED); // vnet3, at 1000
    now = 2_000;
    const appeared: number[] = [];
    monitor.watch({ names: new Set(['vnet3']), macs: new Set() }, 1_500, () => appeared.push(1_500));
    expect(appeared).toEqual([]);
    monitor.watch({ names: new Set(['vnet3']), macs: new Set() }, 900, () => appeared.push(900));
    expect(appeared).toEqual([900]);
  });
});
