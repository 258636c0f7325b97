import { tapName } from '../../src/agent/dataplane/names';
import { RedisStore } from '../../src/controller/store/redis-store';
import { agentResources, makeAgent, spansFromScratch, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { prng } from '../support/prng';

const ssh = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22 };
const http = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, remoteCidr: '0.0.0.0/0' };
const egressAll = [
  { direction: 'egress', ethertype: 'IPv4', protocol: 'any', remoteCidr: '0.0.0.0/0' },
  { direction: 'egress', ethertype: 'IPv6', protocol: 'any', remoteCidr: '::/0' },
];

describe('policy sync: security groups that follow the VM', () => {
  const prefix = uniquePrefix('policy-sync');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    make = factories(client);
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  async function converged(among: TestAgent[]): Promise<boolean> {
    const truth = await spansFromScratch(ctl.redis, ctl.app.get(RedisStore));
    return among.every((a) => {
      const hostId = truth.hostsByName.get(a.agent.config.hostName)!;
      return JSON.stringify(agentResources(a.agent)) === JSON.stringify(truth.spans.get(hostId) ?? []);
    });
  }

  it('gives each host the policies of its own ports and the members of the groups they reference; a join costs one member upsert', async () => {
    const tenant = await make.tenant({ name: 'acme' });
    const seg = await make.segment(tenant.id, { name: 'web', cidr: '10.0.0.0/24' });
    const bastion = await make.securityGroup(tenant.id, { name: 'bastion', rules: [{ ...ssh, remoteCidr: '0.0.0.0/0' }, ...egressAll] });
    const web = await make.securityGroup(tenant.id, { name: 'web', rules: [http, { ...ssh, remoteGroupId: bastion.id }, ...egressAll] });
    const hosts = [];
    const mine: TestAgent[] = [];
    for (let i = 1; i <= 3; i++) {
      hosts.push(await make.host({ name: `pv${i}`, vtepIp: `192.0.2.${10 + i}` }));
      mine.push(makeAgent(`pv${i}`, ctl.grpcTarget, { vtepIp: `192.0.2.${10 + i}` }));
    }
    agents.push(...mine);
    const p1 = await make.port(seg.id, { hostId: hosts[0].id, ips: ['10.0.0.11'], securityGroupIds: [web.id] });
    const p2 = await make.port(seg.id, { hostId: hosts[1].id, ips: ['10.0.0.12'], securityGroupIds: [web.id] });
    const p3 = await make.port(seg.id, { hostId: hosts[2].id, ips: ['10.0.0.13'], securityGroupIds: [bastion.id] });
    // Unbound, in the tenant's default group for now.
    const spare = await make.port(seg.id, { ips: ['10.0.0.14'] });
    await Promise.all(mine.map((a) => a.agent.start()));
    await waitUntil(() => converged(mine), 10_000, () => 'after snapshot');

    const [a1, a2, a3] = mine.map((a) => a.agent);
    expect([...a1.state.policies.keys()]).toEqual([p1.id]);
    expect([...a2.state.policies.keys()]).toEqual([p2.id]);
    expect([...a3.state.policies.keys()]).toEqual([p3.id]);
    const web1 = a1.state.policies.get(p1.id)!;
    expect(web1.ingress).toEqual([
      { ethertype: 'IPv4', protocol: '6', portMin: 22, portMax: 22, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: bastion.id },
      { ethertype: 'IPv4', protocol: '6', portMin: 80, portMax: 80, icmpType: -1, icmpCode: -1, remoteCidr: '0.0.0.0/0', remoteGroupId: '' },
    ]);
    // web references bastion: its hosts hold bastion's members; bastion's policy references no group.
    expect([...a1.state.members.keys()]).toEqual([`${bastion.id}/IPv4/10.0.0.13`]);
    expect([...a2.state.members.keys()]).toEqual([`${bastion.id}/IPv4/10.0.0.13`]);
    expect(a3.state.members.size).toBe(0);

    const before = JSON.parse(JSON.stringify(a1.received));
    const deltasBefore = a1.stats.deltas;
    expect((await client.patch(`/v1/ports/${spare.id}`, { securityGroupIds: [bastion.id] })).status).toBe(200);
    await waitUntil(() => a1.state.members.has(`${bastion.id}/IPv4/10.0.0.14`), 10_000, () => 'member delivered');
    await waitUntil(() => converged(mine), 10_000, () => 'after the join');
    expect(a1.stats.deltas - deltasBefore).toBe(1);
    expect(a1.received.upserts).toEqual({ ...before.upserts, member: before.upserts.member + 1 });
    expect(a1.received.removals).toEqual(before.removals);
    expect([...a1.state.policies.keys()]).toEqual([p1.id]);
  });

  it('loads the rendered firewall when enabled, reloads it when a referenced group gains a member, and nacks a failed load, then retries it', async () => {
    const tenant = await make.tenant({ name: 'fw-tenant' });
    const seg = await make.segment(tenant.id, { name: 'fw', cidr: '10.9.0.0/24' });
    const admins = await make.securityGroup(tenant.id, { name: 'admins', rules: egressAll });
    const web = await make.securityGroup(tenant.id, { name: 'web', rules: [{ ...ssh, remoteGroupId: admins.id }, ...egressAll] });
    const host = await make.host({ name: 'fw1', vtepIp: '192.0.2.91' });
    const a = makeAgent('fw1', ctl.grpcTarget, { vtepIp: '192.0.2.91', firewall: true });
    agents.push(a);
    const port = await make.port(seg.id, { hostId: host.id, ips: ['10.9.0.11'], securityGroupIds: [web.id] });
    await a.agent.start();
    await waitUntil(() => a.agent.state.policies.has(port.id) && (a.dataplane.firewall?.ports.has(tapName(port.id)) ?? false), 10_000, () => 'firewall loaded');
    const loads = a.dataplane.firewallLoads;
    expect(a.dataplane.firewall?.text).not.toContain('10.9.0.12');

    const acksBefore = a.agent.stats.acks;
    await make.port(seg.id, { ips: ['10.9.0.12'], securityGroupIds: [admins.id] });
    await waitUntil(() => (a.dataplane.firewall?.text ?? '').includes('10.9.0.12'), 10_000, () => 'set updated');
    expect(a.dataplane.firewallLoads).toBe(loads + 1);
    await waitUntil(() => a.agent.stats.acks > acksBefore, 10_000, () => 'acked');

    const nacksBefore = a.agent.stats.nacks;
    a.dataplane.failNextFirewall('nft: boom');
    await make.port(seg.id, { ips: ['10.9.0.13'], securityGroupIds: [admins.id] });
    await waitUntil(() => a.agent.stats.nacks > nacksBefore, 10_000, () => 'nacked');
    // The failure was once: the retry (after a backoff delay, no new change needed) loads it.
    await waitUntil(() => (a.dataplane.firewall?.text ?? '').includes('10.9.0.13'), 10_000, () => 'not retried');
  });

  it('never lets an agent holding only one tenant’s ports hold a policy, member or port of another tenant', async () => {
    const random = prng(2026);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
    const tenants = [await make.tenant({ name: 'iso-a' }), await make.tenant({ name: 'iso-b' })];
    const segs = await Promise.all(tenants.map((t) => make.segment(t.id, { name: 'net', cidr: '10.1.0.0/24' })));
    const groups: string[][] = tenants.map((t) => [t.defaultSecurityGroupId]);
    const ports: string[][] = [[], []];
    const hostsOf: string[][] = [[], []];
    const mine: TestAgent[] = [];
    const violations: string[] = [];
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < 2; i++) {
        const name = `iso${t}-${i}`;
        hostsOf[t].push((await make.host({ name, vtepIp: `198.51.100.${t * 10 + i + 1}` })).id);
        const test = makeAgent(name, ctl.grpcTarget, { vtepIp: `198.51.100.${t * 10 + i + 1}` });
        const other = 1 - t;
        test.agent.onProgress = () => {
          const s = test.agent.state;
          for (const p of s.ports.values()) {
            if (ports[other].includes(p.id) || p.segmentId === segs[other].id) {
              violations.push(`${name} holds port ${p.id}`);
            }
          }
          for (const id of s.policies.keys()) {
            if (ports[other].includes(id)) {
              violations.push(`${name} holds policy ${id}`);
            }
          }
          for (const m of s.members.values()) {
            if (groups[other].includes(m.groupId)) {
              violations.push(`${name} holds member ${m.groupId}/${m.cidr}`);
            }
          }
          for (const id of s.segments.keys()) {
            if (id === segs[other].id) {
              violations.push(`${name} holds segment ${id}`);
            }
          }
        };
        mine.push(test);
      }
    }
    agents.push(...mine);
    await Promise.all(mine.map((a) => a.agent.start()));
    for (let step = 0; step < 60; step++) {
      const t = random() < 0.5 ? 0 : 1;
      const roll = random();
      if (roll < 0.15 || groups[t].length < 2) {
        const peer = pick(groups[t]);
        const g = await created(client.post('/v1/security-groups', { tenantId: tenants[t].id, name: `g${step}`, rules: [{ ...ssh, remoteGroupId: peer }, ...egressAll] }));
        groups[t].push(g.id);
      } else if (roll < 0.55 || ports[t].length < 2) {
        const securityGroupIds = random() < 0.3 ? [] : [pick(groups[t].slice(1))];
        const hostId = random() < 0.85 ? pick(hostsOf[t]) : undefined;
        const p = await created(client.post('/v1/ports', { segmentId: segs[t].id, ips: [`10.1.0.${10 + step}`], securityGroupIds, ...(hostId ? { hostId } : {}) }));
        ports[t].push(p.id);
      } else if (roll < 0.8) {
        const res = await client.patch(`/v1/ports/${pick(ports[t])}`, { securityGroupIds: random() < 0.3 ? [] : [pick(groups[t].slice(1))], hostId: random() < 0.8 ? pick(hostsOf[t]) : null });
        expect(res.status).toBe(200);
      } else if (roll < 0.9) {
        const id = pick(groups[t].slice(1));
        const res = await client.patch(`/v1/security-groups/${id}`, { rules: [http, { ...ssh, remoteGroupId: pick(groups[t]) }, ...egressAll] });
        expect(res.status).toBe(200);
      } else {
        const id = ports[t].splice(Math.floor(random() * ports[t].length), 1)[0];
        expect((await client.delete(`/v1/ports/${id}`)).status).toBe(204);
      }
    }
    await waitUntil(() => converged(mine), 15_000, () => 'after the workload');
    mine.forEach((a) => a.agent.onProgress?.());
    expect(violations).toEqual([]);
    // The workload did reach the agents.
    expect(mine.some((a) => a.agent.state.policies.size > 0)).toBe(true);
    expect(mine.some((a) => a.agent.state.members.size > 0)).toBe(true);
  });
});
