import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { waitUntil } from '../support/agents';
import { api } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';

/**
 * The status page (/ui) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core, against the controller and two real agents of an OverlayStack. The page is
 * read as a person sees it (the tables' text), waiting on it with deadlines; the API is changed
 * with the tests' own clients meanwhile. A screenshot goes to .bench-out/status-page.png.
 */
const describeSystem = systemSuite('status page', ['chromium']);

/** How long the page may take to show a change: a refresh (2 s) plus the controller noticing. */
const PAGE_DEADLINE_MS = 20_000;
/**
 * Each wait of these tests has its own deadline and message (PAGE_DEADLINE_MS, the controller's
 * close); a test makes several, on a machine that may be busy, so the test's own timeout is only
 * the backstop behind them.
 */
jest.setTimeout(180_000);

describeSystem('the status page at /ui in headless Chromium, against real agents', () => {
  const stack = new OverlayStack('system-status-page');
  let browser: Browser;
  let url: string;
  /** The tenant the first test makes, for the tenant token's view. */
  let tenantId: string;
  let segmentName: string;

  beforeAll(async () => {
    // Findings evaluated every second, so that the page shows some within the test.
    await stack.start({ hypervisors: 2, controllerEnv: { OVERLAY_AUDIT_INTERVAL_MS: '1000' } });
    url = stack.ctl.url;
    browser = await chromium.launch({ executablePath: execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack.stop();
  }, 60_000);

  /** A token of `role` made with the harness's admin token. */
  let tokens = 0;
  async function tokenOf(role: string, fields: Record<string, unknown> = {}): Promise<string> {
    const res = await api(url).post('/v1/tokens', { name: `status-page-${role}-${++tokens}`, role, ...fields });
    expect(res.status).toBe(201);
    return res.body.token as string;
  }

  /** A fresh browser context (its own sessionStorage) with the page open and `token` given to it; console errors collected. */
  async function openPage(token: string): Promise<{ page: Page; problems: string[]; requests: { url: string; authorization?: string }[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // A locator that waits must fail within the page's deadline, saying what, not run into the test's timeout.
    page.setDefaultTimeout(PAGE_DEADLINE_MS);
    const problems: string[] = [];
    const requests: { url: string; authorization?: string }[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
    const res = await page.goto(`${url}/ui`);
    expect(res?.status()).toBe(200);
    await page.fill('#token', token);
    await page.click('#sign-in button[type=submit]');
    return { page, problems, requests };
  }

  /** A table's rows as text, cell by cell. */
  const rowsOf = async (page: Page, table: string): Promise<string[][]> => (await page.locator(`#${table} tbody tr`).allInnerTexts()).map((row) => row.split('\t').map((c) => c.trim()));
  const rowOf = async (page: Page, table: string, first: string): Promise<string[] | undefined> => (await rowsOf(page, table)).find((r) => r[0] === first);
  const panelError = async (page: Page, panel: string): Promise<string> => (await page.locator(`[data-panel="${panel}"]`).textContent()) ?? '';

  /** Waits until `condition` holds on the page; on the deadline, fails showing what the page shows. */
  async function waitForPage(page: Page, what: string, condition: () => Promise<boolean>): Promise<void> {
    try {
      await waitUntil(condition, PAGE_DEADLINE_MS);
    } catch {
      const shown = await page.innerText('body').catch((err: unknown) => `(unreadable: ${String(err)})`);
      throw new Error(`the page did not show ${what} within ${PAGE_DEADLINE_MS} ms; it shows:\n${shown}${stack.agentLogs(5)}`);
    }
  }

  it('shows an auditor the hosts, a segment with its VNI and ports, a migration as its timeline grows, findings, and a host disconnecting when its agent stops', async () => {
    const auditor = await tokenOf('auditor');
    const { page, problems, requests } = await openPage(auditor);
    await waitForPage(page, 'both hosts connected', async () => (await rowOf(page, 'hosts', 'hv1'))?.[2] === 'connected' && (await rowOf(page, 'hosts', 'hv2'))?.[2] === 'connected');

    const client = stack.client;
    const tenant = await client.post('/v1/tenants', { name: 'status-page' });
    tenantId = tenant.body.id;
    segmentName = 'web';
    const segment = await client.post('/v1/segments', { tenantId, name: segmentName, cidr: '10.70.0.0/24' });
    const port = await client.post('/v1/ports', { segmentId: segment.body.id, vmId: 'vm-ui', hostId: stack.hostIds.get('hv1'), ips: ['10.70.0.10'] });
    expect([tenant.status, segment.status, port.status]).toEqual([201, 201, 201]);
    await waitForPage(page, 'the segment with its VNI, 1 port on 1 host', async () => {
      const row = await rowOf(page, 'segments', segmentName);
      return row !== undefined && row[1] === String(segment.body.vni) && row[4] === '1' && row[5] === '1';
    });

    // No token in any URL; every API call carried it in the header.
    const apiCalls = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'));
    expect(apiCalls.length).toBeGreaterThan(0);
    expect(requests.filter((r) => r.url.includes(auditor))).toEqual([]);
    expect(apiCalls.filter((r) => r.authorization !== `Bearer ${auditor}`)).toEqual([]);

    // A migration: prepared (the destination's agent acked), then committed and realized.
    const prepared = await client.post('/v1/migrations?timeout=30000', { vmId: 'vm-ui', sourceHostId: stack.hostIds.get('hv1'), destinationHostId: stack.hostIds.get('hv2') });
    expect({ status: prepared.status, state: prepared.body.state }).toEqual({ status: 201, state: 'prepared' });
    const events = (row: string[] | undefined) => [...(row?.[4] ?? '').matchAll(/^(?:\d+\.\s*)?([a-z-]+)/gm)].map((m) => m[1]);
    await waitForPage(page, 'the prepared migration and its first events', async () => {
      const row = await rowOf(page, 'migrations', 'vm-ui');
      const seen = events(row);
      return row?.[1] === 'hv1' && row[2] === 'hv2' && row[3] === 'prepared' && seen[0] === 'prepared' && seen.includes('destination-acked');
    });
    const committed = await client.post(`/v1/migrations/${prepared.body.id}/commit?wait=realized`);
    expect({ status: committed.status, state: committed.body.state }).toEqual({ status: 200, state: 'completed' });
    await waitForPage(page, "the completed migration's whole timeline", async () => {
      const row = await rowOf(page, 'migrations', 'vm-ui');
      const seen = events(row);
      return row?.[3] === 'completed' && ['prepared', 'destination-acked', 'committed', 'peers-acked', 'source-cleaned'].every((e) => seen.includes(e));
    });

    // Refreshes update rows in place: a mark on hv1's row survives two of them (no redraw, no flicker).
    await page.locator('#hosts tbody tr', { hasText: 'hv1' }).evaluate((row: any) => {
      row.dataset.probe = 'kept';
    });
    const updatedAt = async () => (await page.locator('#freshness').textContent()) ?? '';
    for (let i = 0; i < 2; i++) {
      const before = await updatedAt();
      await waitForPage(page, 'a refresh', async () => (await updatedAt()) !== before);
    }
    expect(await page.locator('#hosts tbody tr[data-probe="kept"]').count()).toBe(1);

    // hv2's agent stops: the page says so; hv1 stays connected.
    await stack.agents.get('hv2')!.stop();
    await waitForPage(page, 'hv2 disconnected, hv1 connected', async () => (await rowOf(page, 'hosts', 'hv2'))?.[2] === 'disconnected' && (await rowOf(page, 'hosts', 'hv1'))?.[2] === 'connected');

    // The audit's findings (evaluated every second here): listed, their hosts named, not shown as ids.
    await waitForPage(page, 'an open finding about a host', async () => (await rowsOf(page, 'findings')).some((r) => /\bhost hv[12]\b/.test(r[2] ?? '')));
    expect(await panelError(page, 'findings')).toBe('');
    const findings = (await rowsOf(page, 'findings')).map((r) => r.join(' '));
    expect(findings.filter((f) => [...stack.hostIds.values()].some((id) => f.includes(id)))).toEqual([]);

    const out = join(__dirname, '..', '..', '.bench-out');
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, 'status-page.png'), fullPage: true });
    // Nothing refused by the CSP, no script error.
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows a tenant token its own segments and the API's refusal of everything deployment-wide", async () => {
    const { page, problems } = await openPage(await tokenOf('tenant', { tenantId }));
    await waitForPage(page, "the tenant's segment", async () => (await rowOf(page, 'segments', segmentName)) !== undefined);
    for (const panel of ['hosts', 'migrations', 'findings']) {
      expect(await panelError(page, panel)).toMatch(/^403 FORBIDDEN: /);
    }
    expect(await rowsOf(page, 'hosts')).toEqual([]);
    // Its browser logs the refused calls (403) as failed loads; nothing else.
    expect(problems.filter((p) => !p.includes('403'))).toEqual([]);
    await page.context().close();
  });

  it('asks again for a token the controller refuses, and keeps none', async () => {
    const { page } = await openPage(`unknown-${'x'.repeat(40)}`);
    await waitForPage(page, 'the refusal', async () => ((await page.locator('#sign-in-error').textContent()) ?? '').includes('401 UNAUTHENTICATED'));
    expect(await page.locator('#sign-in').isVisible()).toBe(true);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.context().close();
  });

  it('shows hostile values from the API as text, never as markup', async () => {
    const { page, problems } = await openPage(await tokenOf('auditor'));
    const evil = '<img src=x onerror="document.title=\'pwned\'">';
    // The API's answer, with a host whose name and last error are markup (as a compromised store might hold).
    await page.route((u) => u.pathname === '/v1/hosts', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      body.items.push({ ...body.items[0], id: 'evil', name: evil, lastError: { revision: 1, error: '<script>document.title="pwned"</script>', at: new Date().toISOString() } });
      await route.fulfill({ response: res, json: body });
    });
    await waitForPage(page, 'the hostile host, as text', async () => (await rowOf(page, 'hosts', evil)) !== undefined);
    expect((await rowOf(page, 'hosts', evil))?.[5]).toBe('revision 1: <script>document.title="pwned"</script>');
    expect(await page.locator('#hosts img, #hosts script').count()).toBe(0);
    expect(await page.title()).toBe('overlayd status');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  // Last: it stops the controller.
  it('keeps showing the last data, and says how old it is, while the controller is away', async () => {
    const { page } = await openPage(await tokenOf('auditor'));
    await waitForPage(page, 'hv1 connected', async () => (await rowOf(page, 'hosts', 'hv1'))?.[2] === 'connected');
    await stack.closeController();
    await waitForPage(page, 'the controller unreachable', async () => ((await page.locator('#freshness').textContent()) ?? '').includes('could not be reached'));
    expect(await page.locator('#freshness').textContent()).toMatch(/showing data from \d/);
    expect((await rowOf(page, 'hosts', 'hv1'))?.[2]).toBe('connected');
    await page.context().close();
  });
});
