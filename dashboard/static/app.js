// Slipway's dashboard. It is a client of the API under /api/v1 and nothing
// else: it signs in with an API token kept in this tab's sessionStorage and
// sends it as `Authorization: Bearer` with every call, so no token ever goes
// into a URL. Pages are picked by the hash (#/repos/ID, #/builds/ID,
// #/builds/ID/image, #/images); everything is built with DOM calls and
// textContent, never from HTML strings holding data.

const TOKEN_KEY = 'slipway.token';

// The Git hosts a repository can be connected from, as forge/hosts names
// them (dashboard_test.go checks this list against that table).
const HOSTS = [
  ['github', 'GitHub'],
  ['bitbucket', 'Bitbucket Cloud'],
  ['bitbucket-server', 'Bitbucket Data Center'],
  ['gitlab', 'GitLab'],
  ['gitea', 'Gitea or Forgejo'],
];

const ROLE_RANK = { read: 1, write: 2, admin: 3 };
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'skipped']);

const app = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  who: null,
  // The page being shown: aborting it stops its requests, its log stream
  // and its timers.
  page: null,
};

// ---------------------------------------------------------------- DOM

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  add(el, kids);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function add(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
  return el;
}

// put replaces el's children with kids, skipping the null and false that
// optional pieces leave.
function put(el, ...kids) {
  el.replaceChildren();
  return add(el, kids);
}

const $ = (sel, root = document) => root.querySelector(sel);

// svgNS is the SVG namespace, taken from the HTML parser rather than
// written out, so that no asset names any URL.
let svgNS = '';
function s(tag, attrs, ...kids) {
  if (!svgNS) {
    const t = document.createElement('template');
    t.innerHTML = '<svg></svg>';
    svgNS = t.content.firstChild.namespaceURI;
  }
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  return add(el, kids);
}

let uid = 0;
const nextID = (p) => `${p}-${++uid}`;

function announce(msg) {
  const el = $('#announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = msg; }, 50);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// every runs fn every ms milliseconds until signal aborts.
function every(ms, signal, fn) {
  const t = setInterval(() => { if (!document.hidden) fn().catch(() => {}); }, ms);
  signal.addEventListener('abort', () => clearInterval(t), { once: true });
}

// keepFocus redraws part of a page with fn and, when the focus was on a
// link or button in it, puts it back on the new one with the same text, so
// that a refresh does not throw a keyboard user back to the top.
function keepFocus(container, fn) {
  const had = container.contains(document.activeElement) ? document.activeElement : null;
  const key = had && had.textContent;
  fn();
  if (!had || had.isConnected) return;
  const again = [...container.querySelectorAll('a, button')].find((el) => el.textContent === key);
  if (again) again.focus();
}

// ---------------------------------------------------------------- API

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = 'GET', body, signal, signingIn = false } = {}) {
  const headers = { Authorization: `Bearer ${app.token}`, Accept: 'application/json' };
  const init = { method, headers, signal, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1${path}`, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (res.status === 401 && !signingIn) {
    signOut('The server no longer accepts this token (revoked or expired). Sign in again.');
  }
  if (!res.ok) {
    throw new APIError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  }
  return data;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- roles

function roleIn(org) {
  const w = app.who;
  if (!w) return '';
  if (w.site_admin) return 'admin';
  return w.organization === org ? w.role : '';
}

const may = (org, need) => (ROLE_RANK[roleIn(org)] || 0) >= ROLE_RANK[need];
const mayConnect = () => app.who.site_admin || app.who.role === 'admin';
const orgOf = (repo) => repo.organization || repo.full_name.split('/')[0].toLowerCase();

// ---------------------------------------------------------------- formats

function ago(t) {
  if (!t) return '';
  const sec = (Date.now() - Date.parse(t)) / 1000;
  if (sec < 45) return 'just now';
  const min = sec / 60;
  if (min < 60) return `${Math.max(1, Math.round(min))} min ago`;
  const hours = min / 60;
  if (hours < 24) return `${Math.round(hours)} h ago`;
  return `${Math.round(hours / 24)} d ago`;
}

function when(t) {
  if (!t) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: t, title: new Date(t).toLocaleString() }, ago(t));
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec < 10 ? sec.toFixed(1) : Math.round(sec)} s`;
  const m = Math.floor(sec / 60);
  const rest = Math.round(sec % 60);
  if (m < 60) return `${m} min ${String(rest).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const abs = Math.abs(n);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = abs;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  const num = i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1);
  return `${n < 0 ? '−' : ''}${num} ${units[i]}`;
}

const short = (digest, n = 12) => (digest || '').replace(/^sha256:/, '').slice(0, n);

// times are a build's queue time (created → started) and run time
// (started → finished), counted to now while it waits or runs.
function times(b) {
  const at = (t) => (t ? Date.parse(t) : null);
  const created = at(b.created_at);
  const started = at(b.started_at);
  const finished = at(b.finished_at);
  const now = Date.now();
  const queue = started !== null ? started - created : (b.status === 'queued' ? now - created : null);
  let run = null;
  if (started !== null) run = (finished !== null ? finished : (TERMINAL.has(b.status) ? null : now)) - started;
  return { queue, run: run === null || Number.isNaN(run) ? null : run };
}

function ruleLabel(r) {
  const src = r.source_type === 'pull_request'
    ? `pull requests${r.source ? ` to ${r.source}` : ''}`
    : `${r.source_type} ${r.source}`;
  const tags = (r.tags || []).join(', ');
  return tags ? `${src} → ${tags}` : src;
}

function refName(ref) {
  return (ref || '').replace(/^refs\/heads\//, '').replace(/^refs\/tags\//, 'tag ').replace(/^refs\/pull\/(\d+)\/head$/, 'PR #$1');
}

// ---------------------------------------------------------------- pieces

function pill(status) {
  return h('span', { class: `pill s-${status}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), status);
}

function errorBox(err) {
  let msg = err instanceof Error ? err.message : String(err);
  if (err instanceof APIError && err.status === 404) msg = 'Not found, or not in your organization.';
  if (err instanceof APIError && err.status === 403) msg = `Not allowed: ${err.message}`;
  return h('div', { class: 'alert error', role: 'alert' }, msg);
}

function copyButton(text, label) {
  return h('button', {
    type: 'button',
    class: 'btn small',
    'aria-label': label,
    onclick: async (e) => {
      const btn = e.currentTarget;
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // No clipboard API (a page not served over a secure origin):
        // select the text so that the user can copy it.
        const code = btn.parentElement.querySelector('code');
        if (code) getSelection().selectAllChildren(code);
        announce('Selected: press Ctrl+C to copy');
        return;
      }
      btn.textContent = 'Copied';
      announce('Copied to the clipboard');
      setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    },
  }, 'Copy');
}

function command(text, label) {
  return h('div', { class: 'command' }, h('code', {}, text), copyButton(text, label));
}

function pageHead(title, sub, ...actions) {
  document.title = `${title} · Slipway`;
  return h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, title), sub ? h('p', { class: 'sub' }, sub) : null),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

function panel(title, ...kids) {
  const id = nextID('panel');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), kids);
}

function dl(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function table(caption, cols, rows, { hideCaption = true } = {}) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', { class: hideCaption ? 'visually-hidden' : null }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: c.cls || null }, c.label)))),
    h('tbody', {}, rows)));
}

function button(label, onclick, cls = 'btn') {
  return h('button', { type: 'button', class: cls, onclick }, label);
}

// busy runs an action of a button, disabling it meanwhile and showing the
// API's refusal next to it.
async function busy(btn, errSlot, fn) {
  btn.disabled = true;
  put(errSlot);
  try {
    await fn();
  } catch (e) {
    put(errSlot, errorBox(e));
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- sign in

function renderWho() {
  const who = $('#who');
  const nav = $('#nav');
  if (!app.who) {
    put(who);
    nav.hidden = true;
    return;
  }
  nav.hidden = false;
  const w = app.who;
  const scope = w.site_admin ? 'site admin' : `${w.organization} · ${w.role}`;
  put(who,
    h('span', { class: 'account' }, h('span', { class: 'visually-hidden' }, 'Signed in as '), w.account || 'token'),
    h('span', { class: 'role' }, scope),
    button('Sign out', () => signOut(''), 'btn ghost small'),
  );
}

function signOut(message) {
  app.token = '';
  app.who = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (app.page) app.page.abort();
  renderWho();
  showSignIn(message);
}

function showSignIn(message) {
  document.title = 'Sign in · Slipway';
  const errSlot = h('div', {});
  if (message) errSlot.append(h('div', { class: 'alert', role: 'status' }, message));
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false',
    'aria-describedby': 'token-hint',
  });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-h' },
    h('h1', { id: 'signin-h' }, 'Sign in to Slipway'),
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'API token'),
      input,
      h('p', { id: 'token-hint', class: 'hint' },
        'Create one with ', h('code', {}, 'slipway token create --org acme --account you --role read'),
        '. The token stays in this browser tab only and is forgotten when the tab closes.')),
    errSlot,
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    put(errSlot);
    app.token = input.value.trim();
    try {
      app.who = await api('/whoami', { signingIn: true });
      sessionStorage.setItem(TOKEN_KEY, app.token);
      renderWho();
      await route({ focus: true });
    } catch (err) {
      app.token = '';
      const msg = err instanceof APIError && err.status === 401 ? 'That token is unknown, revoked or expired.' : err.message;
      put(errSlot, h('div', { class: 'alert error', role: 'alert' }, msg));
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  put($('#main'), form);
  input.focus();
}

// ---------------------------------------------------------------- router

const ROUTES = [
  [/^\/$/, viewRepos, 'repos'],
  [/^\/connect$/, viewConnect, 'repos'],
  [/^\/repos\/([\w-]+)$/, viewRepo, 'repos'],
  [/^\/builds\/([\w-]+)$/, viewBuild, 'repos'],
  [/^\/builds\/([\w-]+)\/image$/, viewImage, 'repos'],
  [/^\/images$/, viewImages, 'images'],
  [/^\/images\/([^/]+)\/([^/]+)$/, viewTags, 'images'],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const [path, query = ''] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(query) };
}

async function route({ focus = false } = {}) {
  if (app.page) app.page.abort();
  const page = new AbortController();
  app.page = page;
  const main = $('#main');
  if (!app.who) {
    showSignIn('');
    return;
  }
  const { path, query } = parseHash();
  const found = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (found && a.dataset.nav === found[2]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!found) {
    put(main, pageHead('Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/' }, 'Go to the repositories.')));
    return;
  }
  const [re, view] = found;
  const params = path.match(re).slice(1).map(decodeURIComponent);
  main.setAttribute('aria-busy', 'true');
  let node;
  try {
    node = await view({ params, query, signal: page.signal });
  } catch (e) {
    if (page.signal.aborted) return;
    node = h('div', {}, pageHead('Something went wrong'), errorBox(e));
  }
  if (page.signal.aborted) return;
  main.removeAttribute('aria-busy');
  put(main, node);
  if (focus) main.focus({ preventScroll: false });
}

// ---------------------------------------------------------------- repositories

// lastPerRule is the newest build of each of repo's rules, from builds
// listed newest first.
function lastPerRule(repo, builds) {
  return (repo.rules || []).map((rule, i) => {
    const b = builds.find((x) => (x.rules && x.rules.length
      ? x.rules.includes(i)
      : x.rule && x.rule.source_type === rule.source_type && x.rule.source === rule.source));
    return { rule, build: b };
  });
}

async function viewRepos({ signal }) {
  const repos = await api('/repos', { signal });
  const actions = mayConnect() ? [h('a', { class: 'btn primary', href: '#/connect' }, 'Connect a repository')] : [];
  const head = pageHead('Repositories', `${repos.length} connected`, ...actions);
  if (!repos.length) {
    return h('div', {}, head, h('div', { class: 'empty-state card' },
      h('p', {}, 'No repositories yet.'),
      mayConnect()
        ? h('p', {}, h('a', { href: '#/connect' }, 'Connect one'), ' from GitHub, GitLab, Bitbucket or Gitea.')
        : h('p', {}, 'Someone with the admin role connects them.')));
  }
  const byOrg = new Map();
  for (const r of [...repos].sort((a, b) => a.full_name.localeCompare(b.full_name))) {
    const org = orgOf(r);
    if (!byOrg.has(org)) byOrg.set(org, []);
    byOrg.get(org).push(r);
  }
  const sections = [...byOrg.keys()].sort().map((org) => {
    const id = nextID('org');
    return h('section', { class: 'org', 'aria-labelledby': id },
      h('h2', { id }, org, h('span', { class: 'count' }, ` ${byOrg.get(org).length} ${byOrg.get(org).length === 1 ? 'repository' : 'repositories'}`)),
      h('ul', { class: 'repo-list', role: 'list' }, byOrg.get(org).map((r) => repoCard(r, signal))));
  });
  return h('div', {}, head, sections);
}

function repoCard(repo, signal) {
  const rules = h('ul', { class: 'rule-list', role: 'list' }, h('li', { class: 'muted' }, 'Loading builds…'));
  const dot = h('span', { class: 'dot big s-none', 'aria-hidden': 'true' });
  const card = h('li', { class: 'card repo' },
    h('div', { class: 'repo-title' }, dot,
      h('h3', {}, h('a', { href: `#/repos/${enc(repo.id)}` }, repo.full_name)),
      h('span', { class: 'tag' }, repo.provider),
      repo.public ? h('span', { class: 'tag' }, 'public') : null),
    h('p', { class: 'mono muted small' }, repo.image),
    rules);
  api(`/builds?repo=${enc(repo.id)}&limit=25`, { signal }).then((builds) => {
    if (builds[0]) dot.setAttribute('class', `dot big s-${builds[0].status}`);
    put(rules, ...lastPerRule(repo, builds).map(({ rule, build }) => h('li', {},
      h('span', {}, build ? pill(build.status) : h('span', { class: 'pill s-none' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'no builds')),
      h('span', { class: 'rule-name', title: ruleLabel(rule) }, ruleLabel(rule)),
      h('span', { class: 'rule-when small' }, build
        ? [h('a', { href: `#/builds/${enc(build.id)}` }, `build ${short(build.id, 8)}`), ' ', h('span', { class: 'muted' }, when(build.created_at))]
        : null))));
  }).catch((e) => { if (!signal.aborted) put(rules, h('li', {}, errorBox(e))); });
  return card;
}

// ---------------------------------------------------------------- connect

async function viewConnect() {
  const head = pageHead('Connect a repository', 'Slipway reads the repository on its host, creates the push webhook there and starts watching it.');
  if (!mayConnect()) {
    return h('div', {}, head, h('div', { class: 'alert' }, 'Connecting a repository needs the admin role in its organization.'));
  }
  const field = (id, label, input, hint) => h('div', { class: 'field' },
    h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
  const host = h('select', { id: 'c-host', name: 'provider' }, HOSTS.map(([v, l]) => h('option', { value: v }, l)));
  const name = h('input', {
    id: 'c-name', name: 'full_name', required: true, placeholder: 'acme/demo', autocomplete: 'off',
    pattern: '[A-Za-z0-9_.\\-]+(/[A-Za-z0-9_.\\-]+)+', 'aria-describedby': 'c-name-hint', spellcheck: 'false',
  });
  const token = h('input', { id: 'c-token', name: 'token', type: 'password', required: true, autocomplete: 'off', 'aria-describedby': 'c-token-hint' });
  const image = h('input', { id: 'c-image', name: 'image', required: true, autocomplete: 'off', 'aria-describedby': 'c-image-hint', spellcheck: 'false' });
  const apiURL = h('input', { id: 'c-api', name: 'api_url', type: 'url', autocomplete: 'off', 'aria-describedby': 'c-api-hint', spellcheck: 'false' });
  const now = h('input', { id: 'c-now', name: 'build_now', type: 'checkbox' });
  const registry = app.who.registry || '';
  let imageEdited = false;
  image.addEventListener('input', () => { imageEdited = true; });
  name.addEventListener('input', () => {
    if (!imageEdited && registry) image.value = name.value ? `${registry}/${name.value.trim().toLowerCase()}` : '';
  });
  const errSlot = h('div', {});
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Connect repository');
  const form = h('form', { class: 'card form', 'aria-label': 'Connect a repository' },
    field('c-host', 'Git host', host),
    field('c-name', 'Repository', name, 'As the host names it: owner/name (GitLab subgroups: group/subgroup/name).'),
    field('c-token', 'Access token', token, 'Slipway reads the repository, creates its webhook, clones and posts commit statuses with it. It is stored sealed and never shown again.'),
    field('c-image', 'Image', image, registry
      ? `Where builds are pushed, without a tag. On this server's registry: ${registry}/<organization>/<name>.`
      : 'Where builds are pushed, without a tag: registry/namespace/name.'),
    h('details', { class: 'more' }, h('summary', {}, 'Self-hosted Git host'),
      field('c-api', 'API URL', apiURL, 'Leave empty for the public host. For GitHub Enterprise, its /api/v3/ root; for GitLab, its /api/v4/ root.')),
    h('div', { class: 'check' }, now, h('label', { for: 'c-now' }, 'Build the watched branches now (otherwise the next push builds)')),
    errSlot,
    h('div', { class: 'actions' }, submit, h('a', { class: 'btn ghost', href: '#/' }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    submit.textContent = 'Connecting…';
    put(errSlot);
    try {
      const body = { provider: host.value, full_name: name.value.trim(), token: token.value, image: image.value.trim(), build_now: now.checked };
      if (apiURL.value.trim()) body.api_url = apiURL.value.trim();
      const repo = await api('/repos/connect', { method: 'POST', body });
      announce(`Connected ${repo.full_name}`);
      location.hash = `#/repos/${enc(repo.id)}`;
    } catch (err) {
      put(errSlot, errorBox(err));
      submit.disabled = false;
      submit.textContent = 'Connect repository';
    }
  });
  return h('div', {}, head, form);
}

// ---------------------------------------------------------------- repository

async function viewRepo({ params: [id], signal }) {
  const [repo, builds] = await Promise.all([
    api(`/repos/${enc(id)}`, { signal }),
    api(`/builds?repo=${enc(id)}&limit=30`, { signal }),
  ]);
  const org = orgOf(repo);
  const canWrite = may(org, 'write');
  const errSlot = h('div', {});
  const actions = [];
  if (canWrite) {
    const branch = repo.default_branch || 'main';
    const b = button(`Build ${branch} now`, () => busy(b, errSlot, async () => {
      const nb = await api(`/repos/${enc(repo.id)}/builds`, { method: 'POST', body: { ref: `refs/heads/${branch}` } });
      location.hash = `#/builds/${enc(nb.id)}`;
    }));
    actions.push(b);
  }
  const head = pageHead(repo.full_name, h('span', {},
    h('span', { class: 'tag' }, repo.provider), ' ',
    h('span', { class: 'mono' }, repo.image), ' · default branch ', h('strong', {}, repo.default_branch || 'main'),
    ' · ', h('a', { href: `#/images?org=${enc(org)}` }, 'images')), ...actions);

  const buildsSlot = h('div', {});
  const chartSlot = h('div', {});
  const hooksSlot = h('div', {});
  const showBuilds = (list) => {
    put(chartSlot, durationChart(list));
    put(buildsSlot, buildsTable(list));
    put(hooksSlot, hooksList(repo, list));
  };
  showBuilds(builds);
  every(10000, signal, async () => {
    const list = await api(`/builds?repo=${enc(id)}&limit=30`, { signal });
    keepFocus(buildsSlot.parentElement, () => showBuilds(list));
  });

  return h('div', {}, head, errSlot,
    h('div', { class: 'grid' },
      panel('Recent builds', chartSlot, buildsSlot),
      h('div', { class: 'side' },
        rulesPanel(repo, canWrite),
        panel('Deploy hooks', hooksSlot),
        badgePanel(repo, canWrite))));
}

function buildsTable(builds) {
  if (!builds.length) return h('p', { class: 'muted' }, 'No builds yet: push to a watched branch, or build one now.');
  return table('Recent builds, newest first', [
    { label: 'Status' }, { label: 'Build' }, { label: 'Ref' }, { label: 'Commit' },
    { label: 'Queued', cls: 'num' }, { label: 'Build time', cls: 'num' }, { label: 'Created' },
  ], builds.map((b) => {
    const t = times(b);
    return h('tr', {},
      h('td', {}, pill(b.status)),
      h('td', {}, h('a', { href: `#/builds/${enc(b.id)}`, class: 'mono' }, short(b.id, 8))),
      h('td', {}, refName(b.ref), b.rebuild_of ? [' ', h('span', { class: 'tag' }, 'rebuild')] : null),
      h('td', { class: 'commit', title: b.message || null }, h('span', { class: 'mono' }, short(b.commit, 7)), b.message ? h('span', { class: 'msg' }, ` ${b.message.split('\n')[0]}`) : null),
      h('td', { class: 'num' }, duration(t.queue)),
      h('td', { class: 'num' }, duration(t.run)),
      h('td', {}, when(b.created_at)));
  }));
}

// durationChart draws each recent build as a bar: its queue time at the
// bottom, its build time above, oldest on the left. The table beside it
// holds the same numbers, and the figure's caption sums them up.
function durationChart(builds) {
  const items = builds.slice(0, 30).reverse().map((b) => ({ b, ...times(b) }))
    .filter((x) => x.run !== null || x.queue !== null);
  if (!items.length) return h('p', { class: 'muted' }, 'The chart of build and queue times appears after the first build.');
  const W = 640;
  const H = 170;
  const left = 56;
  const top = 8;
  const bottom = 6;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(1000, ...items.map((x) => (x.queue || 0) + (x.run || 0))));
  const slot = (W - left) / Math.max(items.length, 12);
  const barW = Math.max(4, Math.min(26, slot * 0.66));
  const y = (v) => top + plotH - (v / max) * plotH;
  const titleID = nextID('chart-t');
  const descID = nextID('chart-d');
  const runs = items.map((x) => x.run).filter((v) => v !== null).sort((a, b) => a - b);
  const queues = items.map((x) => x.queue).filter((v) => v !== null).sort((a, b) => a - b);
  const median = (a) => (a.length ? a[Math.floor((a.length - 1) / 2)] : null);
  const summary = `${items.length} recent builds, oldest first. Build time: median ${duration(median(runs))}, longest ${duration(runs[runs.length - 1])}. Queue time: median ${duration(median(queues))}, longest ${duration(queues[queues.length - 1])}.`;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${titleID} ${descID}`, class: 'chart' },
    s('title', { id: titleID }, 'Build and queue times of recent builds'),
    s('desc', { id: descID }, summary));
  for (const f of [0, 0.5, 1]) {
    const gy = y(max * f);
    svg.append(s('line', { x1: left, x2: W, y1: gy, y2: gy, class: 'grid-line' }),
      s('text', { x: left - 8, y: gy + 4, class: 'axis', 'text-anchor': 'end' }, axisLabel(max * f)));
  }
  items.forEach((x, i) => {
    const bx = left + i * slot + (slot - barW) / 2;
    const q = x.queue || 0;
    const r = x.run || 0;
    const g = s('g', { class: 'bar' },
      s('title', {}, `Build ${short(x.b.id, 8)} (${x.b.status}): queued ${duration(x.queue)}, built in ${duration(x.run)}`));
    if (q > 0) g.append(s('rect', { x: bx, y: y(q), width: barW, height: Math.max(1, y(0) - y(q)), class: 'queue' }));
    if (r > 0) g.append(s('rect', { x: bx, y: y(q + r), width: barW, height: Math.max(1, y(q) - y(q + r)), rx: 2, class: `run s-${x.b.status}` }));
    svg.append(g);
  });
  return h('figure', { class: 'chart-fig' }, svg,
    h('figcaption', {},
      h('span', { class: 'legend' }, h('span', { class: 'swatch run', 'aria-hidden': 'true' }), 'build time (coloured by result)'),
      h('span', { class: 'legend' }, h('span', { class: 'swatch queue', 'aria-hidden': 'true' }), 'queue time'),
      h('span', { class: 'visually-hidden' }, `${summary} The table below lists the same builds.`)));
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten
// seconds (or whole minutes), so that its gridlines read well.
function niceMax(ms) {
  const sec = ms / 1000;
  if (sec > 120) return Math.ceil(sec / 120) * 120 * 1000;
  const p = 10 ** Math.floor(Math.log10(sec));
  const step = [1, 2, 5, 10].find((m) => m * p >= sec);
  return step * p * 1000;
}

function axisLabel(ms) {
  if (ms === 0) return '0';
  const sec = ms / 1000;
  if (sec < 120) return `${Number(sec.toFixed(1))} s`;
  return `${Number((sec / 60).toFixed(1))} min`;
}

function rulesTable(rules) {
  return h('ol', { class: 'rules', 'aria-label': 'Build rules' }, rules.map((r) => h('li', { class: r.enabled === false ? 'disabled' : null },
    h('div', { class: 'rule-src' }, h('span', { class: 'tag' }, r.source_type.replace('_', ' ')), ' ',
      h('code', {}, r.source || 'any'), r.enabled === false ? h('span', { class: 'tag' }, 'disabled') : null),
    h('div', { class: 'rule-tags' }, h('span', { class: 'visually-hidden' }, 'Tags: '), h('span', { 'aria-hidden': 'true' }, '→ '),
      (r.tags || []).map((t) => h('code', { class: 'chip' }, t))),
    h('div', { class: 'small muted' },
      h('span', { class: 'mono' }, `${r.context || '.'}/${r.dockerfile || 'Dockerfile'}`),
      r.platforms ? ` · ${r.platforms}` : '',
      r.size_warn_increase ? ` · warns past +${r.size_warn_increase.replace(/^\+/, '')}` : '',
      r.test && r.test.target ? ` · tests ${r.test.target}` : ''))));
}

// rulesPanel shows the rules and, for writers, edits them. The API checks
// an edit exactly as it checks a registration; its answer names the field
// (rules[1].tags: …), which is marked and focused.
function rulesPanel(repo, canWrite) {
  const body = h('div', {});
  const sec = panel('Build rules', body);
  const show = () => {
    put(body, rulesTable(repo.rules || []),
      canWrite ? h('div', { class: 'actions' }, button('Edit rules', edit)) : null);
  };
  const edit = () => {
    const draft = structuredClone(repo.rules || []);
    const list = h('div', {});
    const errSlot = h('div', {});
    const draw = () => put(list, ...draft.map((r, i) => ruleFieldset(r, i, () => { collect(); draft.splice(i, 1); draw(); })));
    const collect = () => {
      for (const fs of list.querySelectorAll('fieldset')) readRule(fs, draft[Number(fs.dataset.rule)]);
    };
    draw();
    const save = h('button', { type: 'submit', class: 'btn primary' }, 'Save rules');
    const form = h('form', { class: 'rules-form', 'aria-label': 'Edit build rules' }, list,
      h('div', { class: 'actions' },
        button('Add a rule', () => { collect(); draft.push({ source_type: 'branch', source: '', tags: [] }); draw(); list.lastChild.querySelector('select').focus(); }),
      ),
      errSlot,
      h('div', { class: 'actions' }, save, button('Cancel', () => { show(); body.querySelector('button')?.focus(); }, 'btn ghost')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      collect();
      for (const el of form.querySelectorAll('[aria-invalid]')) {
        el.removeAttribute('aria-invalid');
        el.removeAttribute('aria-describedby');
      }
      await busy(save, errSlot, async () => {
        const saved = await api(`/repos/${enc(repo.id)}`, { method: 'PATCH', body: { rules: draft } });
        repo.rules = saved.rules;
        show();
        announce('Rules saved');
      });
      const m = /rules\[(\d+)\]\.(\w+)/.exec(errSlot.textContent);
      if (m) {
        const input = form.querySelector(`[data-rule="${m[1]}"] [data-field="${m[2]}"]`)
          || form.querySelector(`[data-rule="${m[1]}"] [data-field="source"]`);
        if (input) {
          const alert = errSlot.querySelector('[role="alert"]');
          alert.id = nextID('rules-error');
          input.setAttribute('aria-invalid', 'true');
          input.setAttribute('aria-describedby', alert.id);
          input.focus();
        }
      }
    });
    put(body, form);
    form.querySelector('select, input')?.focus();
  };
  show();
  return sec;
}

// ruleFieldset edits a rule's common fields; the others (build
// arguments, path filters, tests) are kept as they are.
function ruleFieldset(r, i, remove) {
  const id = (f) => `rule-${i}-${f}`;
  const input = (f, label, value, extra = {}) => h('div', { class: `field${extra.wide ? ' wide' : ''}` },
    h('label', { for: id(f) }, label),
    h('input', { id: id(f), 'data-field': f, value: value || '', autocomplete: 'off', spellcheck: 'false', ...extra, wide: null }));
  const type = h('select', { id: id('source_type'), 'data-field': 'source_type' },
    ['branch', 'tag', 'pull_request'].map((t) => h('option', { value: t, selected: r.source_type === t }, t.replace('_', ' '))));
  const enabled = h('input', { id: id('enabled'), 'data-field': 'enabled', type: 'checkbox', checked: r.enabled !== false });
  return h('fieldset', { class: 'rule-edit', 'data-rule': String(i) },
    h('legend', {}, `Rule ${i + 1}`),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: id('source_type') }, 'Type'), type),
      input('source', 'Source', r.source, { placeholder: 'main, or /regex/' }),
      input('tags', 'Tags, comma-separated', (r.tags || []).join(', '), { placeholder: 'latest, {sourceref}', wide: true }),
      input('dockerfile', 'Dockerfile', r.dockerfile, { placeholder: 'Dockerfile' }),
      input('context', 'Context', r.context, { placeholder: '.' }),
      input('platforms', 'Platforms', r.platforms, { placeholder: 'linux/amd64,linux/arm64' }),
      input('size_warn_increase', 'Size warning', r.size_warn_increase, { placeholder: '20%' })),
    h('div', { class: 'row end' },
      h('div', { class: 'check' }, enabled, h('label', { for: id('enabled') }, 'Enabled')),
      button(`Remove rule ${i + 1}`, remove, 'btn ghost small danger')));
}

function readRule(fs, r) {
  const val = (f) => fs.querySelector(`[data-field="${f}"]`).value.trim();
  r.source_type = val('source_type');
  r.source = val('source');
  r.tags = val('tags').split(',').map((t) => t.trim()).filter(Boolean);
  for (const f of ['dockerfile', 'context', 'platforms', 'size_warn_increase']) {
    if (val(f)) r[f] = val(f);
    else delete r[f];
  }
  if (fs.querySelector('[data-field="enabled"]').checked) {
    if (r.enabled === false) delete r.enabled;
  } else {
    r.enabled = false;
  }
}

// hooksList shows each deploy hook with its latest deliveries, taken from
// the recent builds.
function hooksList(repo, builds) {
  const hooks = repo.hooks || [];
  if (!hooks.length) return h('p', { class: 'muted' }, 'No deploy hooks: builds notify nobody.');
  return h('ul', { class: 'hooks', role: 'list' }, hooks.map((hook, i) => {
    const recent = [];
    for (const b of builds) {
      (b.deliveries || []).forEach((d, n) => { if (d.hook === i) recent.push({ b, d, n }); });
    }
    return h('li', {},
      h('p', { class: 'mono hook-url' }, hook.url),
      h('p', { class: 'small muted' }, (hook.events && hook.events.length ? hook.events : ['image.pushed']).join(', '), ` · ${hook.format || 'dockerhub'}`),
      recent.length
        ? h('ul', { class: 'deliveries', role: 'list' }, recent.slice(0, 5).map(({ b, d }) => {
          const last = d.attempts && d.attempts[d.attempts.length - 1];
          return h('li', {}, pill(d.status), ` ${d.event || 'image.pushed'} `,
            h('a', { href: `#/builds/${enc(b.id)}`, class: 'small' }, `build ${short(b.id, 8)}`),
            h('span', { class: 'small muted' }, ` ${tries(d)}`, last ? `, ${answer(last)}` : ''));
        }))
        : h('p', { class: 'small muted' }, 'No deliveries among the recent builds.'));
  }));
}

// badgePanel shows the status badge and, for writers, its key: a private
// repository's badge is shown to whoever has the key.
function badgePanel(repo, canWrite) {
  const body = h('div', {});
  const errSlot = h('div', {});
  const [org, ...rest] = repo.full_name.split('/');
  const name = rest[rest.length - 1];
  const draw = (key) => {
    const path = `/badge/${enc(orgOf(repo) || org.toLowerCase())}/${enc(name)}.svg${key ? `?key=${enc(key)}` : ''}`;
    const url = `${location.origin}${path}`;
    const link = `${location.origin}/#/repos/${enc(repo.id)}`;
    // An <img> sends no token: a private repository's badge shows only
    // with its key.
    const shown = key || repo.public;
    const kids = [
      shown ? h('p', {}, h('img', { src: path, alt: `Build status of ${repo.full_name}`, class: 'badge', height: '20' })) : null,
      shown ? command(`[![build](${url})](${link})`, 'Copy the badge Markdown') : null,
      shown ? null : h('p', { class: 'small muted' }, 'A private repository\'s badge is shown to whoever has its key: create one to embed the badge in a README.'),
    ];
    if (canWrite) {
      const make = button(key ? 'New badge key' : 'Create a badge key', () => busy(make, errSlot, async () => {
        const ans = await api(`/repos/${enc(repo.id)}/badge-key`, { method: 'POST' });
        repo.badge_key = ans.badge_key;
        draw(ans.badge_key);
        announce(key ? 'New badge key made; the old one stopped working' : 'Badge key made');
      }), 'btn small');
      const row = h('div', { class: 'actions' }, make);
      if (key) {
        const revoke = button('Revoke key', () => busy(revoke, errSlot, async () => {
          await api(`/repos/${enc(repo.id)}/badge-key`, { method: 'DELETE' });
          repo.badge_key = '';
          draw('');
          announce('Badge key revoked');
        }), 'btn small ghost danger');
        row.append(revoke);
      }
      kids.push(row);
    }
    put(body, ...kids, errSlot);
  };
  draw(repo.badge_key || '');
  return panel('Status badge', body);
}

// ---------------------------------------------------------------- build

async function viewBuild({ params: [id], signal }) {
  let b = await api(`/builds/${enc(id)}`, { signal });
  const repo = await api(`/repos/${enc(b.repo_id)}`, { signal }).catch(() => null);
  const org = b.organization || (repo ? orgOf(repo) : '');
  const canWrite = may(org, 'write');

  const status = h('p', { id: 'build-status', class: 'status-line', role: 'status', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions' });
  const errSlot = h('div', {});
  const facts = h('div', {});
  const pull = h('div', {});
  const deliveries = h('div', {});
  const logEl = h('pre', { id: 'log', class: 'log', tabindex: '0', 'aria-label': 'Build log', 'aria-describedby': 'log-state' });
  const logState = h('p', { id: 'log-state', class: 'small muted' }, 'Connecting to the log…');

  const draw = (build) => {
    b = build;
    put(status, pill(b.status), b.error ? h('span', { class: 'status-error' }, b.error) : null,
      b.reason && !b.error ? h('span', { class: 'muted' }, b.reason) : null);
    keepFocus(actions, () => put(actions, ...buildActions(b, canWrite, errSlot, draw)));
    put(facts, buildFacts(b, repo));
    put(pull, ...pullSection(b));
    keepFocus(deliveries, () => put(deliveries, deliveriesTable(b, canWrite, errSlot, redelivered)));
  };
  draw(b);

  const refresh = async () => draw(await api(`/builds/${enc(id)}`, { signal }));
  // Deploy hooks are delivered after the build ends, and again when asked:
  // the page shows the deliveries as they land.
  let settling = false;
  async function settle() {
    if (settling) return;
    settling = true;
    for (let i = 0; i < 30 && !signal.aborted && (b.deliveries || []).some((d) => d.status === 'pending'); i++) {
      await sleep(2000, signal);
      if (!signal.aborted) await refresh().catch(() => {});
    }
    settling = false;
  }
  async function redelivered() {
    await refresh();
    settle();
  }
  followLog(id, {
    signal,
    onText: (text) => appendLog(logEl, text),
    onStatus: (build) => draw(build),
    onState: (state) => { logState.textContent = state; },
    onEnd: async () => {
      logState.textContent = 'The log is complete.';
      await refresh().catch(() => {});
      settle();
    },
  });

  const title = `Build ${short(b.id, 8)}`;
  const head = pageHead(title, h('span', {},
    repo ? h('a', { href: `#/repos/${enc(repo.id)}` }, repo.full_name) : h('span', { class: 'mono' }, b.image),
    ` · ${refName(b.ref)} · `, h('span', { class: 'mono' }, short(b.commit, 7)),
    b.message ? ` · ${b.message.split('\n')[0]}` : ''));
  head.append(actions);
  return h('div', {}, head, status, errSlot,
    h('div', { class: 'grid' },
      h('div', {}, pull, panel('Log', logEl, logState)),
      h('div', { class: 'side' }, panel('Details', facts), panel('Deploy deliveries', deliveries))));
}

function appendLog(el, text) {
  const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  el.append(text);
  if (atEnd) el.scrollTop = el.scrollHeight;
}

function buildActions(b, canWrite, errSlot, draw) {
  const out = [];
  if (b.status === 'succeeded' && b.digest) {
    out.push(h('a', { class: 'btn', href: `#/builds/${enc(b.id)}/image` }, 'Image and layers'));
  }
  if (!canWrite) return out;
  if (!TERMINAL.has(b.status)) {
    const cancel = button('Cancel build', () => busy(cancel, errSlot, async () => {
      draw(await api(`/builds/${enc(b.id)}/cancel`, { method: 'POST' }));
      announce('Cancel requested');
    }), 'btn danger');
    out.push(cancel);
  } else {
    const rebuild = button('Rebuild', () => busy(rebuild, errSlot, async () => {
      const nb = await api(`/builds/${enc(b.id)}/rebuild`, { method: 'POST' });
      announce('Rebuild queued');
      location.hash = `#/builds/${enc(nb.id)}`;
    }), 'btn primary');
    out.push(rebuild);
  }
  return out;
}

function buildFacts(b, repo) {
  const t = times(b);
  return dl([
    ['Repository', repo ? h('a', { href: `#/repos/${enc(repo.id)}` }, repo.full_name) : 'deleted'],
    ['Ref', refName(b.ref)],
    ['Commit', h('span', { class: 'mono', title: b.commit }, short(b.commit, 12))],
    ['Rule', ruleLabel(b.rule || {})],
    ['Tags', (b.tags || []).length ? b.tags.map((x) => h('code', { class: 'chip' }, x)) : '—'],
    b.digest ? ['Digest', h('span', { class: 'mono', title: b.digest }, `sha256:${short(b.digest, 16)}…`)] : null,
    b.image_size ? ['Image size', bytes(b.image_size)] : null,
    ['Trigger', `${b.trigger || 'push'}${b.pusher ? ` by ${b.pusher}` : ''}`],
    b.rebuild_of ? ['Rebuild of', h('a', { href: `#/builds/${enc(b.rebuild_of)}`, class: 'mono' }, short(b.rebuild_of, 8))] : null,
    ['Created', when(b.created_at)],
    ['Queued', duration(t.queue)],
    ['Build time', duration(t.run)],
    b.attempts > 1 ? ['Attempts', String(b.attempts)] : null,
  ]);
}

function pullSection(b) {
  const out = [];
  for (const w of b.warnings || []) out.push(h('div', { class: 'alert warn', role: 'note' }, h('strong', {}, 'Warning: '), w));
  if (b.digest && b.status === 'succeeded') {
    out.push(h('div', { class: 'pull' },
      h('p', { class: 'small muted' }, 'Pull this build\'s image'),
      command(`docker pull ${b.image}@${b.digest}`, 'Copy the docker pull command')));
  }
  return out;
}

const tries = (d) => { const n = (d.attempts || []).length; return `${n} ${n === 1 ? 'try' : 'tries'}`; };
const answer = (a) => (a.status_code ? `HTTP ${a.status_code}` : a.error || 'no answer');

function deliveriesTable(b, canWrite, errSlot, redelivered) {
  const ds = b.deliveries || [];
  if (!ds.length) return h('p', { class: 'muted small' }, 'No deploy hooks were called for this build.');
  return h('ul', { class: 'deliveries-list', role: 'list' }, ds.map((d, n) => {
    const last = d.attempts && d.attempts[d.attempts.length - 1];
    let redo = null;
    if (canWrite && d.status !== 'pending') {
      redo = button('Redeliver', () => busy(redo, errSlot, async () => {
        await api(`/builds/${enc(b.id)}/deliveries/${n}/redeliver`, { method: 'POST' });
        announce('Redelivery queued');
        await redelivered();
      }), 'btn small');
      redo.setAttribute('aria-label', `Redeliver ${d.event || 'image.pushed'} to ${d.url}`);
    }
    return h('li', {},
      h('div', { class: 'mono small hook-url' }, d.url),
      h('div', { class: 'delivery-row' }, pill(d.status),
        h('span', { class: 'small' }, d.event || 'image.pushed'),
        h('span', { class: 'small muted' }, tries(d), last ? ` · ${answer(last)}` : ''),
        redo));
  }));
}

// followLog reads the build's log as Server-Sent Events through fetch, so
// that the token travels in the Authorization header (the browser's own
// SSE client cannot send one). Only new text arrives; a dropped stream
// resumes from the last byte offset it saw (Last-Event-ID). A server that
// answers plain text (no live logs) gives the log so far, once.
async function followLog(id, { signal, onText, onStatus, onState, onEnd }) {
  let offset = 0;
  let delay = 500;
  while (!signal.aborted) {
    let ended = false;
    try {
      const headers = { Authorization: `Bearer ${app.token}`, Accept: 'text/event-stream' };
      if (offset > 0) headers['Last-Event-ID'] = String(offset);
      const res = await fetch(`/api/v1/builds/${enc(id)}/log`, { headers, signal, cache: 'no-store' });
      if (res.status === 401) {
        signOut('The server no longer accepts this token. Sign in again.');
        return;
      }
      if (!res.ok) throw new APIError(res.status, res.statusText);
      if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream') || !res.body) {
        onText(await res.text());
        onState('This server does not stream logs: this is the log so far.');
        return;
      }
      onState('Live: new lines appear as the build writes them.');
      delay = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
      let buf = '';
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while (!ended && (cut = buf.indexOf('\n\n')) >= 0) {
          const ev = parseEvent(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
          if (!ev) continue;
          if (ev.type === 'log') {
            onText(JSON.parse(ev.data).text);
            if (ev.id) offset = Number(ev.id);
          } else if (ev.type === 'status') {
            onStatus(JSON.parse(ev.data));
          } else if (ev.type === 'end') {
            ended = true;
            reader.cancel().catch(() => {});
            await onEnd(JSON.parse(ev.data));
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof APIError && e.status === 404) {
        onState('This build has no log.');
        return;
      }
    }
    if (ended || signal.aborted) return;
    onState('The connection dropped: reconnecting…');
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 10000);
  }
}

// parseEvent reads one Server-Sent Event block (lines up to a blank one).
function parseEvent(block) {
  let type = 'message';
  let id = '';
  const data = [];
  for (const raw of block.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  return data.length ? { type, id, data: data.join('\n') } : null;
}

// ---------------------------------------------------------------- image

async function viewImage({ params: [id], query, signal }) {
  const platform = query.get('platform') || '';
  const [b, img] = await Promise.all([
    api(`/builds/${enc(id)}`, { signal }),
    api(`/builds/${enc(id)}/image${platform ? `?platform=${enc(platform)}` : ''}`, { signal }),
  ]);
  const platforms = img.platforms || [];
  const tag = (b.tags || [])[0];
  const head = pageHead(tag ? `${img.image}:${tag}` : img.image, h('span', {},
    h('a', { href: `#/builds/${enc(b.id)}` }, `build ${short(b.id, 8)}`), ' · ', h('span', { class: 'mono' }, img.digest),
    ` · ${img.platform || ''}`));
  const parts = [head];
  if (platforms.length > 1) {
    const sel = h('select', { id: 'platform' }, platforms.map((p) => h('option', { value: p, selected: p === img.platform }, p)));
    sel.addEventListener('change', () => { location.hash = `#/builds/${enc(id)}/image?platform=${enc(sel.value)}`; });
    parts.push(h('div', { class: 'field inline' }, h('label', { for: 'platform' }, 'Platform'), sel));
  }
  for (const w of img.warnings || []) parts.push(h('div', { class: 'alert warn', role: 'note' }, h('strong', {}, 'Size warning: '), w));
  parts.push(h('div', { class: 'stats' },
    stat('Total size', bytes(img.total_size)),
    stat('Layers', String((img.layers || []).filter((l) => !l.empty_layer).length)),
    img.previous ? stat('Change since the previous build', `${img.total_size - img.previous.total_size >= 0 ? '+' : ''}${bytes(img.total_size - img.previous.total_size)}`) : stat('Previous build', 'none'),
    img.diff ? stat('Layers added / removed', `${(img.diff.added || []).length} / ${(img.diff.removed || []).length}`) : null));
  parts.push(h('div', { class: 'grid' },
    panel('Layers', layersTable(img)),
    h('div', { class: 'side' }, panel('Config', configFacts(img.config || {})), panel('Compared with the previous build', diffPanel(img)))));
  return h('div', {}, parts);
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

// instruction is the Dockerfile line a history entry records, without the
// shell wrapper BuildKit writes around RUN.
function instruction(createdBy) {
  return (createdBy || '')
    .replace(/\s*# buildkit$/, '')
    .replace(/^\/bin\/sh -c #\(nop\)\s*/, '')
    .replace(/^(RUN )?\/bin\/sh -c /, 'RUN ')
    .trim() || '—';
}

function layersTable(img) {
  const layers = img.layers || [];
  const added = new Set((img.diff && img.diff.added) || []);
  const biggest = Math.max(1, ...layers.map((l) => l.size || 0));
  return table('Layers, base first, with the instruction that made each', [
    { label: '#', cls: 'num' }, { label: 'Instruction' }, { label: 'Size', cls: 'num' }, { label: 'Digest' },
  ], layers.map((l, i) => h('tr', { class: `layer${l.empty_layer ? ' empty' : ''}${added.has(l.digest) ? ' added' : ''}` },
    h('td', { class: 'num' }, String(i + 1)),
    h('td', { class: 'instr', title: l.created_by || null }, h('code', {}, instruction(l.created_by)),
      added.has(l.digest) ? h('span', { class: 'tag new' }, 'new') : null),
    h('td', { class: 'num' }, l.empty_layer ? h('span', { class: 'muted' }, 'no layer') : h('span', {}, bytes(l.size),
      h('span', { class: 'sizebar', 'aria-hidden': 'true' }, sizeBar(l.size / biggest)))),
    h('td', { class: 'mono small' }, l.digest ? short(l.digest, 12) : '—'))));
}

// sizeBar is a small inline SVG bar of a layer's share of the largest one.
function sizeBar(frac) {
  return s('svg', { viewBox: '0 0 60 6', class: 'bar-mini', focusable: 'false' },
    s('rect', { x: 0, y: 0, width: 60, height: 6, rx: 3, class: 'track' }),
    s('rect', { x: 0, y: 0, width: Math.max(1, 60 * frac), height: 6, rx: 3, class: 'fill' }));
}

function configFacts(c) {
  const list = (a) => (a && a.length ? h('code', {}, JSON.stringify(a)) : h('span', { class: 'muted' }, 'none'));
  const labels = Object.entries(c.labels || {});
  return h('div', {}, dl([
    ['Entrypoint', list(c.entrypoint)],
    ['CMD', list(c.cmd)],
    ['Working dir', c.working_dir ? h('code', {}, c.working_dir) : h('span', { class: 'muted' }, '/')],
    ['User', c.user ? h('code', {}, c.user) : h('span', { class: 'muted' }, 'root')],
    (c.exposed_ports || []).length ? ['Ports', c.exposed_ports.map((p) => h('code', { class: 'chip' }, p))] : null,
    ['Env', (c.env || []).length ? h('ul', { class: 'plain', role: 'list' }, c.env.map((e) => h('li', {}, h('code', {}, e)))) : h('span', { class: 'muted' }, 'none')],
  ]), labels.length ? h('div', {}, h('h3', { class: 'sub-h' }, 'Labels'),
    h('dl', { class: 'labels' }, labels.map(([k, v]) => [h('dt', { class: 'mono small' }, k), h('dd', { class: 'mono small' }, v)]))) : null);
}

function diffPanel(img) {
  if (!img.previous) return h('p', { class: 'muted' }, 'This is the first build of its rule: nothing to compare with.');
  const d = img.diff || { added: [], removed: [], added_bytes: 0 };
  return h('div', {}, dl([
    ['Previous build', h('a', { href: `#/builds/${enc(img.previous.build)}/image`, class: 'mono' }, short(img.previous.build, 8))],
    ['Its size', bytes(img.previous.total_size)],
    ['Layers added', `${(d.added || []).length} (${bytes(d.added_bytes || 0)})`],
    ['Layers removed', String((d.removed || []).length)],
  ]), (d.added || []).length ? h('p', { class: 'small muted' }, 'Added layers are marked “new” in the table.') : null);
}

// ---------------------------------------------------------------- registry

async function viewImages({ query, signal }) {
  const orgs = await api('/orgs', { signal }).catch(() => []);
  const q = h('input', { id: 'img-q', type: 'search', name: 'q', value: query.get('q') || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'name contains…' });
  const org = h('select', { id: 'img-org', name: 'org' },
    h('option', { value: '' }, 'All organizations'),
    orgs.map((o) => h('option', { value: o.name, selected: o.name === query.get('org') }, o.name)));
  const results = h('div', { id: 'img-results', 'aria-live': 'polite' });
  const load = async () => {
    const p = new URLSearchParams();
    if (org.value) p.set('org', org.value);
    if (q.value.trim()) p.set('q', q.value.trim());
    history.replaceState(null, '', `#/images${p.toString() ? `?${p}` : ''}`);
    try {
      put(results, imageResults(await api(`/images${p.toString() ? `?${p}` : ''}`, { signal })));
    } catch (e) {
      if (!signal.aborted) put(results, errorBox(e));
    }
  };
  let timer = 0;
  q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 250); });
  org.addEventListener('change', load);
  const form = h('form', { role: 'search', class: 'searchbar', 'aria-label': 'Search images' },
    h('div', { class: 'field' }, h('label', { for: 'img-q' }, 'Search images'), q),
    h('div', { class: 'field' }, h('label', { for: 'img-org' }, 'Organization'), org),
    h('button', { type: 'submit', class: 'btn' }, 'Search'));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
  return h('div', {}, pageHead('Registry', 'Images by organization, and their tags.'), form, results);
}

function imageResults(images) {
  if (!images.length) return h('p', { class: 'muted' }, 'No images match.');
  const byOrg = new Map();
  for (const im of images) {
    if (!byOrg.has(im.organization)) byOrg.set(im.organization, []);
    byOrg.get(im.organization).push(im);
  }
  return h('div', {}, [...byOrg.keys()].sort().map((o) => {
    const id = nextID('iorg');
    return h('section', { class: 'org', 'aria-labelledby': id }, h('h2', { id }, o),
      h('ul', { class: 'image-list', role: 'list' }, byOrg.get(o).map((im) => {
        const name = im.name.startsWith(`${o}/`) ? im.name.slice(o.length + 1) : im.name;
        return h('li', { class: 'card image-row' },
          h('h3', {}, h('a', { href: `#/images/${enc(o)}/${enc(name)}` }, im.name)),
          h('p', { class: 'mono small muted' }, im.image),
          h('div', { class: 'meta' },
            h('span', { class: 'tag' }, im.public ? 'public' : 'private'),
            h('span', { class: 'small' }, `${im.tags} ${im.tags === 1 ? 'tag' : 'tags'}`),
            im.repo ? h('a', { href: `#/repos/${enc(im.repo)}`, class: 'small' }, 'repository') : null));
      })));
  }));
}

async function viewTags({ params: [org, name], signal }) {
  const tags = await api(`/images/${enc(org)}/${enc(name)}/tags`, { signal });
  const images = await api(`/images?org=${enc(org)}&q=${enc(name)}`, { signal }).catch(() => []);
  const im = images.find((x) => x.name === `${org}/${name}` || x.name === name);
  const ref = im ? im.image : `${org}/${name}`;
  const head = pageHead(`${org}/${name}`, h('span', {}, h('a', { href: `#/images?org=${enc(org)}` }, `${org}'s images`), ' · ', h('span', { class: 'mono' }, ref)));
  if (!tags.length) return h('div', {}, head, h('p', { class: 'muted' }, 'No tags.'));
  return h('div', {}, head, panel('Tags', table(`Tags of ${org}/${name}`, [
    { label: 'Tag' }, { label: 'Digest' }, { label: 'Build' }, { label: 'Pull' },
  ], tags.map((t) => h('tr', {},
    h('td', {}, h('code', { class: 'chip' }, t.tag)),
    h('td', { class: 'mono small', title: t.digest }, short(t.digest, 16)),
    h('td', {}, t.build ? h('a', { href: `#/builds/${enc(t.build)}`, class: 'mono' }, short(t.build, 8)) : h('span', { class: 'muted' }, '—')),
    h('td', {}, command(`docker pull ${ref}:${t.tag}`, `Copy the docker pull command for ${t.tag}`)))))));
}

// ---------------------------------------------------------------- start

async function start() {
  $('#skip').addEventListener('click', (e) => {
    e.preventDefault();
    $('#main').focus();
  });
  window.addEventListener('hashchange', () => route({ focus: true }));
  if (app.token) {
    try {
      app.who = await api('/whoami', { signingIn: true });
    } catch {
      app.token = '';
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  renderWho();
  await route();
}

start();
