import { Registry } from 'prom-client';
import { registerProcessMetrics, scrapedCounter, scrapedGauge } from '../../common/metrics';
import type { Agent } from '../agent';
import { AGENT_VERSION } from '../sync/controller-client';

/** How often the agent's event-loop lag (nodejs_eventloop_lag_*) is sampled. */
export const AGENT_EVENT_LOOP_PRECISION_MS = 100;

/**
 * The agent's Prometheus metrics: what its parts measure as they work (reconcile passes, drift
 * repairs, firewall loads: `agent.instruments`), its state and counters read when scraped, and
 * the process's own. One registry per agent (tests run several in one process).
 */
export function agentMetrics(agent: Agent): Registry {
  const r = new Registry();
  // The lag sampled every 100 ms, not 10: on an idle hypervisor 100 wake-ups a second were
  // ~0.6 % of a core, a third of the agent's idle budget (issue 17: 2 %); a stall still shows.
  registerProcessMetrics(r, { eventLoopPrecisionMs: AGENT_EVENT_LOOP_PRECISION_MS });
  for (const metric of agent.instruments) {
    r.registerMetric(metric);
  }
  scrapedGauge(r, 'overlay_agent_info', 'Always 1: the host this agent programs, and its version', ['host', 'version'], () => [[{ host: agent.config.hostName, version: AGENT_VERSION }, 1]]);
  scrapedGauge(r, 'overlay_agent_connected', '1 while the agent holds a stream to a controller', [], () => [[{}, agent.connected ? 1 : 0]]);
  scrapedGauge(r, 'overlay_agent_in_sync', "1 when the desired state held is the controller's whole state (a snapshot or a resume completed on the current stream, or an earlier one)", [], () => [[{}, agent.synced ? 1 : 0]]);
  scrapedGauge(r, 'overlay_agent_desired_revision', 'The revision of the desired state the agent holds', [], () => [[{}, agent.state.revision]]);
  scrapedGauge(r, 'overlay_agent_applied_revision', 'The last revision the agent programmed and acknowledged (0 before the first)', [], () => [[{}, agent.ackedRevision]]);
  scrapedGauge(r, 'overlay_agent_apply_failing', '1 while the last reconcile pass failed (nacked; retried with backoff)', [], () => [[{}, agent.failing ? 1 : 0]]);
  scrapedGauge(r, 'overlay_agent_failed_ports', 'Local ports the last reconcile pass could not put in place (acked as failed, kept closed, retried with backoff)', [], () => [[{}, agent.failedPorts.length]]);
  scrapedCounter(r, 'overlay_agent_messages_received_total', 'Messages from the controller applied to the desired state, by type: snapshot (a whole one), delta, marker (an empty delta)', ['type'], () => {
    const { snapshots, deltas, emptyDeltas } = agent.stats;
    return [
      [{ type: 'snapshot' }, snapshots],
      [{ type: 'delta' }, deltas - emptyDeltas],
      [{ type: 'marker' }, emptyDeltas],
    ];
  });
  scrapedCounter(r, 'overlay_agent_reports_total', 'Revisions reported to the controller: ack (programmed) or nack (could not be)', ['report'], () => [
    [{ report: 'ack' }, agent.stats.acks],
    [{ report: 'nack' }, agent.stats.nacks],
  ]);
  scrapedCounter(r, 'overlay_agent_connects_total', 'Streams to a controller opened (the first, and every reconnect)', [], () => [[{}, agent.stats.connects]]);
  return r;
}
