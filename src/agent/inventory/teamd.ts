import type { ObservedTeam } from '../../controller/model/observed-inventory';

/** The fields of `teamdctl <team> state dump` (teamd's JSON) the inventory reads. */
interface TeamdState {
  setup?: { runner_name?: string; kernel_team_mode_name?: string };
  runner?: { active_port?: string };
  ports?: Record<
    string,
    {
      link?: { up?: boolean };
      link_watches?: { up?: boolean; list?: Record<string, TeamdLinkWatch> };
      runner?: { selected?: boolean; aggregator?: { selected?: boolean } };
    }
  >;
  link_watches?: { list?: Record<string, TeamdLinkWatch> };
}

interface TeamdLinkWatch {
  name?: string;
  up?: boolean;
  interval?: number;
  validate_active?: boolean;
  validate_inactive?: boolean;
}

/** teamd's runners under the bonding names the audit compares (the others keep teamd's name). */
const RUNNER_MODES: Record<string, string> = { activebackup: 'active-backup', lacp: '802.3ad', roundrobin: 'balance-rr', loadbalance: 'balance-xor' };

/**
 * Pure: a team's mode, link monitoring and ports from teamd's state dump; null when the text is
 * no state dump. Link watches map onto the bond's terms: `ethtool` (carrier events, no polling
 * interval) reads as miimon 1, i.e. on; `arp_ping` gives arpInterval (its interval) and
 * arpValidate (`all`, `active`, `backup` or `none` from validate_active / validate_inactive).
 * Members: up as their link watches say (else their link), active as the runner says (the active
 * port of activebackup, the selected ports of lacp, every up port otherwise).
 */
export function parseTeamdState(text: string): ObservedTeam | null {
  let state: TeamdState;
  try {
    state = JSON.parse(text) as TeamdState;
  } catch {
    return null;
  }
  if (!state || typeof state !== 'object' || !state.setup || typeof state.setup.runner_name !== 'string') {
    return null;
  }
  const runner = state.setup.runner_name;
  const ports = state.ports && typeof state.ports === 'object' ? state.ports : {};
  const watches: TeamdLinkWatch[] = [];
  for (const port of Object.values(ports)) {
    watches.push(...Object.values(port?.link_watches?.list ?? {}));
  }
  watches.push(...Object.values(state.link_watches?.list ?? {}));
  const ethtool = watches.some((w) => w?.name === 'ethtool');
  const arp = watches.find((w) => w?.name === 'arp_ping');
  const arpInterval = arp && typeof arp.interval === 'number' && arp.interval > 0 ? Math.floor(arp.interval) : 0;
  const arpValidate = arp ? (arp.validate_active && arp.validate_inactive ? 'all' : arp.validate_active ? 'active' : arp.validate_inactive ? 'backup' : 'none') : null;
  const members = Object.entries(ports)
    .map(([name, port]) => {
      const up = port?.link_watches?.up ?? port?.link?.up ?? false;
      const active = runner === 'activebackup' ? state.runner?.active_port === name : runner === 'lacp' ? (port?.runner?.selected ?? port?.runner?.aggregator?.selected ?? false) === true && up : up;
      return { name, up: up === true, active };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { mode: RUNNER_MODES[runner] ?? runner, miimon: ethtool ? 1 : 0, arpInterval, arpValidate, members };
}
