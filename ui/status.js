// overlayd's status page: reads the REST API with the token the user gives (kept in this tab's
// sessionStorage, sent as Authorization: Bearer, never put in a URL) and redraws every 2 s.
// Everything shown comes from the API and is treated as hostile: it only ever becomes text
// (textContent, text nodes, attributes set as properties), never markup.

const TOKEN_KEY = 'overlayd.status.token';
const REFRESH_MS = 2000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Ports are counted per segment from the port list, read in pages of PAGE; past PORT_PAGES pages the counts are lower bounds. */
const PAGE = 1000;
const PORT_PAGES = 5;
/** The newest migrations shown (newest first); open ones go to the top. */
const MIGRATIONS_SHOWN = 30;
const OPEN_MIGRATION_STATES = new Set(['preparing', 'prepared', 'committed']);
/** What the controller accepts as a token (config.ts, TOKEN_TEXT): anything else is refused before it goes into a header. */
const TOKEN_TEXT = /^[A-Za-z0-9._~+/=-]{32,256}$/;

const $ = (selector) => {
  const found = document.querySelector(selector);
  if (!found) {
    throw new Error(`status page: ${selector} missing`);
  }
  return found;
};

/** An API refusal or failure: the status and the API's own {code, message}. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function get(path, token) {
  const res = await fetch(path, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status says enough.
  }
  if (!res.ok) {
    throw new ApiError(res.status, typeof body?.code === 'string' ? body.code : `HTTP ${res.status}`, typeof body?.message === 'string' ? body.message : res.statusText);
  }
  // Every call the page makes answers a list.
  if (!Array.isArray(body?.items)) {
    throw new ApiError(res.status, 'UNEXPECTED_ANSWER', `${path} did not answer a list`);
  }
  return body;
}

/** Every page of a list, up to `maxPages`: the items and whether more were left unread. */
async function getAll(path, token, maxPages) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const body = await get(`${path}${sep}limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token);
    items.push(...body.items);
    cursor = body.nextCursor;
    if (!cursor) {
      return { items, truncated: false };
    }
  }
  return { items, truncated: true };
}

// ---- Rendering: text only, rows kept by key so a refresh changes only what changed (no flicker).

const text = (value) => (value === null || value === undefined ? '' : String(value));

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'dataset') {
      Object.assign(node.dataset, value);
    } else {
      node[name] = value;
    }
  }
  node.append(...children.map((c) => (typeof c === 'string' ? document.createTextNode(c) : c)));
  return node;
}

/**
 * A cell: `text` (and optional `className`, `title`), or `nodes` built on demand with `sig`
 * saying when they differ. A cell is rebuilt only when what it shows changed.
 */
function syncCell(td, cell) {
  const sig = JSON.stringify([cell.sig ?? cell.text, cell.className ?? '', cell.title ?? '']);
  if (td.dataset.sig === sig) {
    return;
  }
  td.dataset.sig = sig;
  td.className = cell.className ?? '';
  td.title = cell.title ?? '';
  if (cell.nodes) {
    td.replaceChildren(...cell.nodes());
  } else {
    td.textContent = text(cell.text);
  }
}

/** Makes `tbody` show one row per item, in order, keyed by `keyOf`: rows are moved, updated or dropped, not redrawn. */
function syncRows(tbody, items, keyOf, cellsOf) {
  const rows = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  let next = tbody.firstElementChild;
  for (const item of items) {
    const key = text(keyOf(item));
    let row = rows.get(key);
    rows.delete(key);
    if (!row) {
      row = el('tr', { dataset: { key } });
    }
    const cells = cellsOf(item);
    while (row.cells.length < cells.length) {
      row.append(el('td'));
    }
    cells.forEach((cell, i) => syncCell(row.cells[i], typeof cell === 'object' && cell !== null ? cell : { text: cell }));
    if (row === next) {
      next = next.nextElementSibling;
    } else {
      tbody.insertBefore(row, next);
    }
  }
  // What is left was not in `items`.
  for (const row of rows.values()) {
    row.remove();
  }
}

/** When each panel last showed what the API answered (ISO time): a panel whose call fails keeps its rows and says how old they are. */
const shownAt = new Map();

/** Shows one panel's result: its rows (through `render`), or the refusal or failure above the rows it showed before. */
function showPanel(name, result, render) {
  const problem = $(`[data-panel="${name}"]`);
  const empty = $(`[data-empty="${name}"]`);
  if (result.status === 'fulfilled') {
    render(result.value);
    shownAt.set(name, new Date().toISOString());
    problem.hidden = true;
    problem.textContent = '';
    empty.hidden = $(`#${name} tbody`).rows.length > 0;
    return;
  }
  const since = shownAt.get(name);
  problem.hidden = false;
  problem.textContent = since ? `${describe(result.reason)}; showing data from ${clock(since)}` : describe(result.reason);
  empty.hidden = true;
}

function describe(error) {
  if (error instanceof ApiError) {
    return `${error.status} ${error.code}: ${error.message}`;
  }
  return `the controller could not be reached (${error instanceof Error ? error.message : text(error)})`;
}

const clock = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? text(iso) : d.toLocaleTimeString(undefined, { hour12: false });
};
const stamp = (iso) => {
  const d = new Date(iso);
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  return Number.isNaN(d.getTime()) ? text(iso) : `${day} ${clock(iso)}`;
};

// ---- The panels.

/** Says when a list showed only its first page. */
function showNote(name, message) {
  const note = $(`[data-note="${name}"]`);
  note.hidden = !message;
  note.textContent = message;
}

function renderHosts(hosts, truncated) {
  showNote('hosts', truncated ? `Only the first ${PAGE} hosts are shown.` : '');
  syncRows($('#hosts tbody'), hosts, (h) => h.id, (h) => [
    { text: h.name, title: h.id },
    h.vtepIp,
    { text: h.connected ? 'connected' : 'disconnected', className: h.connected ? 'good' : 'bad' },
    h.appliedRevision,
    { text: h.lag, className: h.lag > 0 ? 'warn' : '' },
    h.lastError
      ? { text: `revision ${text(h.lastError.revision)}: ${text(h.lastError.error)}`, className: 'bad', title: `at ${stamp(h.lastError.at)}` }
      : { text: '—', className: 'muted' },
  ]);
}

function renderSegments(segments, segmentsTruncated, ports, portsTruncated) {
  const counts = new Map();
  for (const port of ports) {
    const c = counts.get(port.segmentId) ?? { ports: 0, hosts: new Set() };
    c.ports++;
    if (port.hostId) {
      c.hosts.add(port.hostId);
    }
    counts.set(port.segmentId, c);
  }
  const atLeast = portsTruncated ? '≥ ' : '';
  syncRows($('#segments tbody'), segments, (s) => s.id, (s) => {
    const c = counts.get(s.id);
    return [
      { text: s.name, title: s.id },
      s.vni,
      s.vlanId ?? '—',
      s.cidr ?? '—',
      `${atLeast}${c?.ports ?? 0}`,
      `${atLeast}${c?.hosts.size ?? 0}`,
    ];
  });
  showNote(
    'segments',
    [segmentsTruncated ? `Only the first ${PAGE} segments are shown.` : '', portsTruncated ? `Port counts from the first ${PORT_PAGES * PAGE} ports only: they are lower bounds.` : '']
      .filter(Boolean)
      .join(' '),
  );
}

function timelineNodes(timeline) {
  const start = timeline.length ? Date.parse(timeline[0].at) : NaN;
  return [
    el(
      'ol',
      { className: 'timeline' },
      timeline.map((e) => {
        const offset = Date.parse(e.at) - start;
        const extra = [];
        if (e.connections !== undefined) {
          extra.push(`${text(e.connections)} connections`);
        }
        if (e.failed) {
          extra.push(`${text(e.failed)} failed`);
        }
        if (e.by) {
          extra.push(`by ${text(e.by.name ?? e.by.system)}`);
        }
        return el('li', { title: stamp(e.at) }, [
          el('span', { className: 'event' }, [text(e.event)]),
          ' ',
          el('span', { className: 'muted' }, [Number.isNaN(offset) ? '' : `+${offset} ms`]),
          ...(extra.length ? [' ', el('span', { className: 'muted' }, [extra.join(', ')])] : []),
        ]);
      }),
    ),
  ];
}

function renderMigrations(migrations, hostName) {
  const open = migrations.filter((m) => OPEN_MIGRATION_STATES.has(m.state));
  const done = migrations.filter((m) => !OPEN_MIGRATION_STATES.has(m.state));
  syncRows($('#migrations tbody'), [...open, ...done], (m) => m.id, (m) => [
    { text: m.vmId ?? `ports ${text(m.portIds?.join(', '))}`, title: m.id },
    hostName(m.sourceHostId),
    hostName(m.destinationHostId),
    { text: m.state, className: OPEN_MIGRATION_STATES.has(m.state) ? 'warn' : m.state === 'completed' ? 'good' : 'bad' },
    { sig: JSON.stringify(m.timeline), nodes: () => timelineNodes(Array.isArray(m.timeline) ? m.timeline : []) },
  ]);
}

function renderFindings(findings, hostName) {
  syncRows($('#findings tbody'), findings, (f) => f.id, (f) => [
    f.recommendation,
    { text: f.severity, className: `severity-${text(f.severity).replace(/[^a-z-]/g, '')}` },
    Object.entries(f.subject ?? {})
      .map(([key, value]) => (key === 'hostId' ? `host ${hostName(value)}` : `${key} ${text(value)}`))
      .join(', '),
    f.evidence,
    { text: stamp(f.openedAt), className: 'nowrap' },
  ]);
}

// ---- The loop.

let timer = null;
let lastSuccess = null;
/** Host names by id, from the last host list read: migrations and findings name hosts with them. */
let hostNames = new Map();

async function refresh(token) {
  const [hosts, segments, ports, migrations, findings] = await Promise.allSettled([
    getAll('/v1/hosts', token, 1),
    getAll('/v1/segments', token, 1),
    getAll('/v1/ports', token, PORT_PAGES),
    get(`/v1/migrations?limit=${MIGRATIONS_SHOWN}`, token),
    get(`/v1/audit/findings?state=open&limit=${PAGE}`, token),
  ]);
  const results = [hosts, segments, ports, migrations, findings];
  const refused = results.find((r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 401);
  if (refused) {
    signOut(`The controller refused the token: ${describe(refused.reason)}`);
    return;
  }
  if (hosts.status === 'fulfilled') {
    hostNames = new Map(hosts.value.items.map((h) => [h.id, h.name]));
  }
  const hostName = (id) => hostNames.get(id) ?? text(id);

  showPanel('hosts', hosts, (page) => renderHosts(page.items, page.truncated));
  const segmentsAndPorts =
    segments.status === 'rejected' ? segments : ports.status === 'rejected' ? ports : { status: 'fulfilled', value: { segments: segments.value, ports: ports.value } };
  showPanel('segments', segmentsAndPorts, ({ segments: s, ports: p }) => renderSegments(s.items, s.truncated, p.items, p.truncated));
  showPanel('migrations', migrations, (page) => renderMigrations(page.items, hostName));
  showPanel('findings', findings, (page) => renderFindings(page.items, hostName));

  const freshness = $('#freshness');
  if (results.some((r) => r.status === 'fulfilled')) {
    lastSuccess = new Date().toISOString();
    freshness.textContent = `updated ${clock(lastSuccess)}, every ${REFRESH_MS / 1000} s`;
    freshness.className = 'muted';
  } else {
    // Nothing answered (the controller is down, or unreachable): the panels keep their rows.
    freshness.textContent = `${describe(hosts.reason)}; showing data from ${lastSuccess ? clock(lastSuccess) : 'never'}`;
    freshness.className = 'bad';
  }
}

async function loop() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    return;
  }
  try {
    await refresh(token);
  } catch (err) {
    // A bug of the page, not of the controller: say so rather than stop silently.
    $('#freshness').textContent = `status page error: ${err instanceof Error ? err.message : text(err)}`;
    $('#freshness').className = 'bad';
  }
  if (sessionStorage.getItem(TOKEN_KEY) === token) {
    timer = setTimeout(loop, REFRESH_MS);
  }
}

function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#sign-in').hidden = true;
  $('#status').hidden = false;
  $('#sign-out').hidden = false;
  $('#freshness').textContent = 'loading…';
  clearTimeout(timer);
  void loop();
}

function signOut(reason = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timer);
  for (const tbody of document.querySelectorAll('tbody')) {
    tbody.replaceChildren();
  }
  shownAt.clear();
  hostNames = new Map();
  lastSuccess = null;
  $('#status').hidden = true;
  $('#sign-out').hidden = true;
  $('#sign-in').hidden = false;
  $('#sign-in-error').textContent = reason;
  $('#freshness').textContent = 'not signed in';
  $('#freshness').className = 'muted';
  $('#token').focus();
}

$('#sign-in').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('#token');
  const token = input.value.trim();
  input.value = '';
  if (TOKEN_TEXT.test(token)) {
    signIn(token);
  } else {
    $('#sign-in-error').textContent = 'A token is 32 to 256 characters of A-Z, a-z, 0-9 and ._~+/=-';
  }
});
$('#sign-out').addEventListener('click', () => signOut());
$('#migrations-scope').textContent = `(the ${MIGRATIONS_SHOWN} newest, open ones first)`;

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved && TOKEN_TEXT.test(saved)) {
  signIn(saved);
} else {
  signOut();
}
