// switchboard console. Plain JavaScript, no build step, no other origin:
// everything comes from this daemon's admin API. Text from the API is only
// ever put in the page as text (h() below), never as HTML.
'use strict';

const $ = (sel, el = document) => el.querySelector(sel);
const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));

// h builds an element: h('td', {class: 'num'}, 'text', child, ...).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const fmt = {
  num: (n) => (n || 0).toLocaleString('en-US'),
  time(t) {
    if (!t) return '–';
    const d = new Date(t);
    const today = new Date().toDateString() === d.toDateString();
    const hms = d.toLocaleTimeString('en-GB', {hour12: false}) + '.' + String(d.getMilliseconds()).padStart(3, '0');
    return today ? hms : d.toISOString().slice(0, 10) + ' ' + hms;
  },
  ago(t) {
    if (!t) return 'never';
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    return fmt.dur(s) + ' ago';
  },
  dur(s) {
    if (s < 1) return s > 0 ? Math.round(s * 1000) + 'ms' : '0s';
    if (s < 120) return Math.round(s) + 's';
    if (s < 7200) return Math.round(s / 60) + 'm';
    if (s < 172800) return Math.round(s / 3600) + 'h';
    return Math.round(s / 86400) + 'd';
  },
  json(v) { return JSON.stringify(v, null, 2); },
};

function badge(word) {
  return h('span', {class: 'badge b-' + word}, word.replace('_', ' '));
}

// ---- API and access -------------------------------------------------

class Unauthorized extends Error {}

async function api(path, body) {
  const opts = {credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    setConn(false, 'daemon unreachable');
    throw e;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: text}; }
  if (res.status === 401) {
    showLogin();
    throw new Unauthorized('log in first');
  }
  if (!res.ok) throw new Error((data && data.error) || res.status + ' ' + res.statusText);
  return data;
}

let loginOpen = false;
function showLogin() {
  if (loginOpen) return;
  loginOpen = true;
  setConn(false, 'needs the admin token');
  const dlg = $('#login');
  $('#login-error').textContent = '';
  dlg.showModal();
  $('#login-token').focus();
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = $('#login-token').value;
  try {
    await api('/api/session', {token});
  } catch (e) {
    $('#login-error').textContent = e instanceof Unauthorized ? 'That token is not right.' : e.message;
    loginOpen = true;
    $('#login').open || $('#login').showModal();
    return;
  }
  $('#login-token').value = '';
  $('#login').close();
  loginOpen = false;
  $('#logout').hidden = false;
  await refreshStatus();
  pollStatus(10000);
  route();
});
$('#login').addEventListener('cancel', (ev) => ev.preventDefault());
$('#logout').addEventListener('click', async () => {
  await api('/api/session/logout', {}).catch(() => {});
  location.reload();
});

function setConn(ok, text) {
  $('#conn').className = 'dot ' + (ok ? 'live' : 'down');
  $('#conn-text').textContent = text;
}

// ---- pages and keys -------------------------------------------------

const pages = {};
let current = null;

function route() {
  const [name, query] = (location.hash.slice(1) || 'overview').split('?');
  const page = pages[name] ? name : 'overview';
  if (current && current !== page && pages[current].leave) pages[current].leave();
  for (const a of $$('.tabs a')) a.setAttribute('aria-selected', a.id === 'tab-' + page ? 'true' : 'false');
  for (const s of $$('.page')) s.hidden = s.id !== 'page-' + page;
  const entering = current !== page;
  current = page;
  pages[page].enter(new URLSearchParams(query || ''), entering);
}
window.addEventListener('hashchange', route);

function typing(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey && ev.key === 'Enter' && current === 'try') {
    ev.preventDefault();
    $('#try-form').requestSubmit();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || $('dialog[open]')) return;
  if (ev.key === 'Escape') {
    if (typing(document.activeElement)) document.activeElement.blur();
    const d = $('#page-' + current + ' .detail:not([hidden])');
    if (d) { d.hidden = true; $$('#page-' + current + ' tr.sel').forEach((r) => r.classList.remove('sel')); }
    return;
  }
  if (typing(document.activeElement)) return;
  const tab = $(`.tabs a[data-key="${ev.key}"]`);
  if (tab) { location.hash = tab.getAttribute('href'); ev.preventDefault(); return; }
  if (ev.key === '/') {
    const f = $('#page-' + current + ' input[type=search], #page-' + current + ' input[type=text], #page-' + current + ' textarea');
    if (f) { ev.preventDefault(); f.focus(); f.select && f.select(); }
  } else if (ev.key === '?') {
    $('#help').showModal();
  } else if (ev.key === 'p' && current === 'tap') {
    $('#tap-pause').click();
  } else if (ev.key === 'j' || ev.key === 'k') {
    const rows = $$('#page-' + current + ' table.rows tbody tr');
    if (!rows.length) return;
    let i = rows.indexOf(document.activeElement);
    i = ev.key === 'j' ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
    rows[i].focus();
  }
});

// A row opens with a click, Enter or Space.
function clickable(tr, open) {
  tr.tabIndex = 0;
  tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'INPUT' && ev.target.tagName !== 'A') open(); });
  tr.addEventListener('keydown', (ev) => {
    if ((ev.key === 'Enter' || ev.key === ' ') && ev.target === tr) { ev.preventDefault(); open(); }
  });
}

function select(tr) {
  $$('tr.sel', tr.parentNode).forEach((r) => r.classList.remove('sel'));
  tr.classList.add('sel');
}

function closeButton(panel) {
  return h('button', {type: 'button', class: 'secondary close', 'aria-label': 'Close detail (Esc)',
    onclick: () => { panel.hidden = true; }}, 'Close');
}

function fillSelect(sel, names, first) {
  const keep = sel.value;
  sel.replaceChildren(...(first ? [h('option', {value: ''}, first)] : []), ...names.map((n) => h('option', {value: n}, n)));
  if (names.includes(keep) || (first && keep === '')) sel.value = keep;
  else if (!first && names.length) sel.value = names[0];
}

// ---- overview -------------------------------------------------------

let status = null;
let statusTimer = null;

async function refreshStatus() {
  try {
    status = await api('/api/status');
  } catch (e) {
    if (!(e instanceof Unauthorized)) setConn(false, 'daemon unreachable: ' + e.message);
    return null;
  }
  setConn(true, 'live · up ' + fmt.dur(status.uptime_seconds));
  $('#version').textContent = status.version || '';
  const rb = $('#reload-badge');
  rb.hidden = false;
  if (status.reload.refused) {
    rb.className = 'badge b-bad';
    rb.textContent = 'reload refused ' + fmt.ago(status.reload.refused.at);
  } else {
    rb.className = 'badge b-ok';
    rb.textContent = 'config applied ' + fmt.ago(status.reload.at);
  }
  const sources = status.sources.map((s) => s.name);
  fillSelect($('#tap-source'), sources, 'all sources');
  fillSelect($('#hist-source'), sources, 'all sources');
  fillSelect($('#try-source'), sources.filter((n) => status.sources.find((s) => s.name === n)), null);
  fillSelect($('#dlq-sink'), status.sinks.map((s) => s.name), 'all sinks');
  return status;
}

function pollStatus(every) {
  clearInterval(statusTimer);
  statusTimer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshStatus().then((s) => s && current === 'overview' && drawOverview(s));
  }, every);
}

const previous = new Map();
// cell is a table cell whose value flashes when it changed since the last
// refresh: counters that move catch the eye.
function cell(key, value, cls, shown) {
  const td = h('td', {class: cls}, shown === undefined ? fmt.num(value) : shown);
  if (previous.has(key) && previous.get(key) !== value) td.classList.add('flash');
  previous.set(key, value);
  return td;
}

function errorCell(le) {
  if (!le) return h('td', {class: 'muted'}, '–');
  return h('td', {class: 'err'}, h('div', {class: 'long'}, fmt.ago(le.at) + ': ' + le.error + ' ',
    le.event_id ? h('a', {href: '#events?id=' + encodeURIComponent(le.event_id)}, 'event ' + le.event_id) : null));
}

function drawOverview(s) {
  const alerts = [];
  if (s.reload.refused) {
    alerts.push(h('div', {class: 'alert bad'}, h('strong', {}, 'The last reload was refused ' + fmt.ago(s.reload.refused.at) +
      ' (' + s.reload.refused.trigger + '); the previous config still runs.'),
    h('ul', {}, s.reload.refused.problems.map((p) => h('li', {class: 'mono'}, p)))));
  }
  for (const k of s.sinks) {
    if (k.dead_letters > 0) {
      alerts.push(h('div', {class: 'alert bad'}, `Sink ${k.name} has ${fmt.num(k.dead_letters)} dead letter${k.dead_letters === 1 ? '' : 's'}. `,
        h('a', {href: '#dlq?sink=' + encodeURIComponent(k.name)}, 'See them')));
    }
    if (k.pending > 0 && k.oldest_pending_seconds > 60) {
      alerts.push(h('div', {class: 'alert warn'}, `Sink ${k.name} is behind: ${fmt.num(k.pending)} pending, the oldest for ${fmt.dur(k.oldest_pending_seconds)}.` +
        (k.last_error ? ' Last error: ' + k.last_error.error : '')));
    }
  }
  for (const r of s.rules) {
    if (r.last_error && Date.now() - new Date(r.last_error.at) < 3600e3) {
      alerts.push(h('div', {class: 'alert warn'}, `Rule ${r.name} failed on an event ${fmt.ago(r.last_error.at)} (counted as no match): ${r.last_error.error}`));
    }
  }
  if (!alerts.length) alerts.push(h('div', {class: 'alert ok'}, 'No dead letters, no sink behind, no refused reload, no rule errors in the last hour.'));
  $('#alerts').replaceChildren(...alerts);

  const hist = s.history.max_events ? `${fmt.num(s.history.events)} of ${fmt.num(s.history.max_events)} events` : 'off';
  $('#facts').replaceChildren(
    h('span', {}, 'Version ', h('b', {}, s.version || 'unknown')),
    h('span', {}, 'Up ', h('b', {}, fmt.dur(s.uptime_seconds)), ' since ', fmt.time(s.started)),
    h('span', {}, 'Config ', h('b', {class: 'mono'}, s.config_path || '(none)'), ' applied ', fmt.ago(s.reload.at), ' by ', s.reload.trigger,
      s.reload.checksum ? h('span', {class: 'mono', title: s.reload.checksum}, ' ' + s.reload.checksum.slice(0, 19) + '…') : null),
    h('span', {}, 'History ', h('b', {}, hist)),
    h('span', {}, 'Taps open ', h('b', {}, String(s.taps))));

  $('#sinks-table tbody').replaceChildren(...s.sinks.map((k) => {
    const tr = h('tr', {class: k.dead_letters > 0 ? 'hot' : (k.pending > 0 && k.oldest_pending_seconds > 60 ? 'warm' : null)},
      h('td', {}, h('strong', {}, k.name), ' ', h('span', {class: 'muted'}, k.type)),
      cell('sk.p.' + k.name, k.pending, 'num'),
      cell('sk.o.' + k.name, Math.round(k.oldest_pending_seconds), 'num', k.pending ? fmt.dur(k.oldest_pending_seconds) : '–'),
      cell('sk.i.' + k.name, k.in_flight, 'num'),
      cell('sk.d.' + k.name, k.delivered_per_minute, 'num'),
      cell('sk.f.' + k.name, k.failed_per_minute, 'num'),
      h('td', {class: 'num'}, k.dead_letters ? h('a', {href: '#dlq?sink=' + encodeURIComponent(k.name)}, fmt.num(k.dead_letters)) : '0'),
      errorCell(k.last_error));
    tr.title = `delivered ${k.delivered}, retried ${k.retried}, dead ${k.dead} since start`;
    return tr;
  }));
  $('#rules-table tbody').replaceChildren(...s.rules.map((r) => h('tr', {},
    h('td', {}, h('strong', {}, r.name)),
    cell('r.m.' + r.name, r.matches, 'num'),
    cell('r.e.' + r.name, r.errors, 'num' + (r.errors ? ' err' : '')),
    h('td', {title: r.last_match ? fmt.time(r.last_match) : ''}, fmt.ago(r.last_match)),
    errorCell(r.last_error))));
  $('#sources-table tbody').replaceChildren(...s.sources.map((src) => {
    const reasons = Object.entries(src.rejected).filter(([, n]) => n > 0);
    const rejected = reasons.reduce((a, [, n]) => a + n, 0);
    return h('tr', {},
      h('td', {}, h('strong', {}, src.name), ' ', h('span', {class: 'muted'}, src.type + (src.stream ? ' (stream)' : ' ' + src.path))),
      cell('s.a.' + src.name, src.accepted, 'num'),
      cell('s.u.' + src.name, src.unmatched, 'num'),
      cell('s.f.' + src.name, src.filtered, 'num'),
      cell('s.d.' + src.name, src.duplicate, 'num'),
      cell('s.r.' + src.name, rejected, 'num' + (rejected ? ' err' : '')),
      h('td', {class: 'mono'}, reasons.length ? reasons.map(([r, n]) => `${r} ${fmt.num(n)}`).join(', ') : '–'));
  }));
}

pages.overview = {
  async enter() {
    const s = await refreshStatus();
    if (s) drawOverview(s);
    pollStatus(2000);
  },
  leave() { pollStatus(10000); },
};

// ---- live tap -------------------------------------------------------

const tap = {ctl: null, paused: false, held: [], rows: 0, seen: 0, dropped: 0, events: new Map(), max: 500};

async function openTap() {
  if (tap.ctl) tap.ctl.abort();
  const ctl = new AbortController();
  tap.ctl = ctl;
  const q = new URLSearchParams();
  if ($('#tap-source').value) q.set('source', $('#tap-source').value);
  if ($('#tap-when').value.trim()) q.set('when', $('#tap-when').value.trim());
  tapStatus('connecting…');
  let res;
  try {
    res = await fetch('/api/tap?' + q, {credentials: 'same-origin', signal: ctl.signal, headers: {Accept: 'text/event-stream'}});
  } catch (e) {
    if (ctl.signal.aborted) return;
    tapStatus('cannot reach the daemon; retrying…', true);
    setTimeout(() => tap.ctl === ctl && openTap(), 2000);
    return;
  }
  if (res.status === 401) { showLogin(); tapStatus('log in to watch', true); return; }
  if (!res.ok) {
    const e = await res.json().catch(() => ({error: res.statusText}));
    tapStatus(e.error, true);
    return;
  }
  tapStatus('live');
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      break;
    }
    if (chunk.done) break;
    buf += dec.decode(chunk.value, {stream: true});
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      sseMessage(buf.slice(0, at));
      buf = buf.slice(at + 2);
    }
  }
  if (tap.ctl === ctl && !ctl.signal.aborted) {
    tapStatus('disconnected; reconnecting…', true);
    setTimeout(() => tap.ctl === ctl && openTap(), 2000);
  }
}

function sseMessage(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (!data) return;
  const msg = JSON.parse(data);
  if (event === 'tap') {
    tap.seen++;
    if (tap.paused) { tap.held.push(msg); if (tap.held.length > tap.max) tap.held.shift(); } else addTapRow(msg);
  } else if (event === 'dropped') {
    tap.dropped += msg.dropped;
  }
  tapStatus(tap.paused ? 'paused' : 'live');
}

function tapStatus(text, bad) {
  const parts = [text, `${fmt.num(tap.seen)} seen`];
  if (tap.paused && tap.held.length) parts.push(`${fmt.num(tap.held.length)} waiting`);
  if (tap.dropped) parts.push(`${fmt.num(tap.dropped)} dropped: the page fell behind, the daemon did not`);
  const el = $('#tap-status');
  el.textContent = parts.join(' · ');
  el.className = 'status' + (bad ? ' error' : '');
}

function tapSummary(m) {
  if (m.outcome === 'rejected') return `${m.http_status} ${m.reason}: ${m.error}`;
  if (m.outcome === 'filtered') return 'dropped by the source\'s own events/filters';
  if (m.outcome === 'duplicate') return 'a provider retry of an accepted event: not routed again';
  const rules = (m.rules || []).join(', ') || (m.sinks && m.sinks.length ? 'unmatched' : 'no rule');
  const sinks = (m.sinks || []).join(', ') || 'nowhere';
  const held = m.held_back && m.held_back.length ? ` (held back by ${m.held_back.join(', ')})` : '';
  return `${rules} → ${sinks}${held}`;
}

function addTapRow(m) {
  const tbody = $('#tap-table tbody');
  const tr = h('tr', {},
    h('td', {class: 'mono'}, fmt.time(m.at)),
    h('td', {}, badge(m.outcome)),
    h('td', {}, m.source || '–'),
    h('td', {class: 'mono'}, m.event_name || '–'),
    h('td', {}, m.status || ''),
    h('td', {class: 'id'}, m.id || ''),
    h('td', {class: m.outcome === 'rejected' ? 'err' : ''}, h('div', {class: 'long'}, tapSummary(m))));
  clickable(tr, () => { select(tr); showTapDetail(m); });
  tbody.prepend(tr);
  $('#tap-empty').hidden = true;
  while (tbody.rows.length > tap.max) tbody.deleteRow(-1);
}

function showTapDetail(m) {
  const panel = $('#tap-detail');
  const kids = [closeButton(panel), h('h3', {}, badge(m.outcome), ' ', m.event_name || m.reason || '')];
  kids.push(h('p', {}, tapSummary(m)));
  if (m.event) {
    kids.push(h('div', {class: 'controls'},
      h('a', {href: '#events?id=' + encodeURIComponent(m.id)}, 'Where did it go?'),
      h('button', {type: 'button', class: 'secondary', onclick: () => {
        $('#try-source').value = m.source;
        $('#try-payload').value = fmt.json(m.event);
        location.hash = '#try';
      }}, 'Try this event')));
    if (m.payload_cut_at) kids.push(h('p', {class: 'muted'}, `The payload is cut at ${fmt.num(m.payload_cut_at)} bytes.`));
    kids.push(h('h3', {}, 'Normalized event'), h('pre', {class: 'code wrap', tabindex: 0}, fmt.json(m.event)));
  } else if (m.error) {
    kids.push(h('pre', {class: 'code wrap'}, m.error));
  }
  panel.replaceChildren(...kids);
  panel.hidden = false;
}

$('#tap-form').addEventListener('submit', (ev) => { ev.preventDefault(); openTap(); });
$('#tap-source').addEventListener('change', () => openTap());
$('#tap-pause').addEventListener('click', () => {
  tap.paused = !tap.paused;
  $('#tap-pause').setAttribute('aria-pressed', String(tap.paused));
  $('#tap-pause').textContent = tap.paused ? 'Resume' : 'Pause';
  if (!tap.paused) { tap.held.forEach(addTapRow); tap.held = []; }
  tapStatus(tap.paused ? 'paused' : 'live');
});
$('#tap-clear').addEventListener('click', () => {
  $('#tap-table tbody').replaceChildren();
  tap.held = []; tap.seen = 0; tap.dropped = 0;
  $('#tap-detail').hidden = true;
  $('#tap-empty').hidden = false;
  tapStatus(tap.paused ? 'paused' : 'live');
});

pages.tap = {
  enter() { if (!tap.ctl) openTap(); },
  leave() { if (tap.ctl) { tap.ctl.abort(); tap.ctl = null; } },
};

// ---- where did my event go ------------------------------------------

let histCursor = 0;
let histQuery = null;

async function findHistory(q, more) {
  const params = new URLSearchParams(q);
  if (more && histCursor) params.set('cursor', histCursor);
  $('#hist-status').textContent = 'searching…';
  let page;
  try {
    page = await api('/api/history?' + params);
  } catch (e) {
    $('#hist-status').textContent = e.message;
    return;
  }
  histQuery = q;
  histCursor = page.next_cursor || 0;
  $('#hist-more').hidden = !histCursor;
  const box = $('#hist-results');
  if (!more) box.replaceChildren();
  if (page.off) {
    $('#hist-status').textContent = 'History is off (history.max_events: 0).';
    return;
  }
  const n = box.children.length + page.items.length;
  if (q.id) {
    $('#hist-status').textContent = page.items.length ? `${page.items.length} record${page.items.length > 1 ? 's' : ''} of event ${q.id}` :
      `No event ${q.id} in the history (it keeps the last ${status ? fmt.num(status.history.max_events) : ''} events${status && status.history.max_age_seconds ? ', for ' + fmt.dur(status.history.max_age_seconds) : ''}; a restart forgets). Check the id, or look for it in the dead letters.`;
  } else {
    $('#hist-status').textContent = n ? `${n} event${n > 1 ? 's' : ''}, newest first` : 'No events in that range.';
  }
  for (const item of page.items) box.append(q.id || page.items.length === 1 ? historyCard(item) : historyRow(item));
}

function historyRow(item) {
  const card = h('div', {class: 'card'});
  const head = h('h3', {}, badge(item.outcome), ' ', h('span', {class: 'mono'}, fmt.time(item.received_at)), ' ', item.source, ' ',
    h('span', {class: 'mono'}, item.event_name), item.status ? ' ' + item.status : '', ' ',
    h('a', {href: '#events?id=' + encodeURIComponent(item.id)}, item.id), ' ',
    h('span', {class: 'muted'}, summary(item)));
  card.append(head);
  return card;
}

function summary(item) {
  if (item.outcome !== 'accepted') return item.outcome === 'filtered' ? 'filtered by its source' : 'duplicate: not routed again';
  if (!item.deliveries.length) return (item.rules.length ? item.rules.join(', ') : 'no rule') + ' → nowhere';
  return item.deliveries.map((d) => `${d.sink}: ${d.state.replace('_', ' ')}`).join(', ');
}

function historyCard(item) {
  const card = h('div', {class: 'card'});
  card.append(h('h3', {}, badge(item.outcome), ' ', item.event_name, item.status ? ' · ' + item.status : '', ' ',
    h('span', {class: 'muted mono'}, item.id)));
  const kv = h('dl', {class: 'kv'},
    h('dt', {}, 'Received'), h('dd', {}, fmt.time(item.received_at) + ' (' + fmt.ago(item.received_at) + ')'),
    h('dt', {}, 'Source'), h('dd', {}, item.source),
    h('dt', {}, 'Rules matched'), h('dd', {}, item.outcome !== 'accepted' ? '–' : (item.rules.join(', ') || 'none (unmatched)')),
    h('dt', {}, 'Sinks chosen'), h('dd', {}, item.outcome !== 'accepted' ? '–' : (item.sinks.join(', ') || 'none: delivered nowhere')));
  if (item.held_back) kv.append(h('dt', {}, 'Held back by'), h('dd', {}, item.held_back.join(', ')));
  if (item.outcome === 'duplicate') kv.append(h('dt', {}, 'Note'), h('dd', {}, 'a provider retry of an event already accepted: acknowledged, not routed again; see the accepted record.'));
  if (item.outcome === 'filtered') kv.append(h('dt', {}, 'Note'), h('dd', {}, 'the source\'s own events/filters dropped it before the rules.'));
  card.append(kv);
  for (const d of item.deliveries) card.append(deliveryBlock(d));
  card.append(h('details', {}, h('summary', {}, 'Normalized event' + (item.payload_cut_at ? ` (payload cut at ${fmt.num(item.payload_cut_at)} of ${fmt.num(item.payload_bytes)} bytes)` : '')),
    h('pre', {class: 'code wrap', tabindex: 0}, fmt.json(item.event))));
  return card;
}

function deliveryBlock(d) {
  const box = h('div', {class: 'delivery'});
  const head = h('h3', {}, 'Sink ', h('strong', {}, d.sink), ' ', badge(d.state));
  if (d.next_attempt) head.append(h('span', {class: 'muted'}, ' next attempt ' + fmt.time(d.next_attempt)));
  if (d.state === 'dead' && d.delivery_id) head.append(' ', h('a', {href: '#dlq?id=' + encodeURIComponent(d.delivery_id)}, 'dead letter ' + d.delivery_id));
  box.append(head);
  if (!d.attempts.length) {
    box.append(h('p', {class: 'muted'}, d.state === 'in_flight' ? 'First attempt under way.' : 'Queued; not attempted yet.'));
    return box;
  }
  const rows = d.attempts.map((a, i) => h('tr', {},
    h('td', {class: 'num'}, i === 0 ? '1' : String(i + 1 + (d.attempts_omitted || 0))),
    h('td', {class: 'mono'}, fmt.time(a.at)),
    h('td', {class: 'num'}, a.took_ms.toFixed(1) + ' ms'),
    h('td', {class: 'num'}, a.status ? String(a.status) : '–'),
    h('td', {}, badge(a.outcome === 'success' ? 'delivered' : a.outcome === 'retry' ? 'retrying' : 'dead')),
    h('td', {class: 'err'}, a.error ? h('div', {class: 'long'}, a.error) : '')));
  if (d.attempts_omitted) rows.splice(1, 0, h('tr', {}, h('td', {colspan: 6, class: 'muted'}, `… ${d.attempts_omitted} attempts not kept …`)));
  box.append(h('div', {class: 'scroll'}, h('table', {class: 'grid attempts'},
    h('thead', {}, h('tr', {}, h('th', {class: 'num'}, '#'), h('th', {}, 'Time'), h('th', {class: 'num'}, 'Took'),
      h('th', {class: 'num'}, 'Answer'), h('th', {}, 'Outcome'), h('th', {}, 'Error'))),
    h('tbody', {}, rows))));
  return box;
}

$('#hist-id-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = $('#hist-id').value.trim();
  if (id) location.hash = '#events?id=' + encodeURIComponent(id);
});
$('#hist-range-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  for (const k of ['source', 'since', 'until']) if ($('#hist-' + k).value.trim()) q.set(k, $('#hist-' + k).value.trim());
  location.hash = '#events?' + q;
});
$('#hist-more').addEventListener('click', () => findHistory(histQuery, true));

pages.events = {
  enter(params) {
    const q = Object.fromEntries(params);
    if (q.id) { $('#hist-id').value = q.id; findHistory({id: q.id}); return; }
    if (q.source !== undefined || q.since !== undefined) {
      for (const k of ['source', 'since', 'until']) $('#hist-' + k).value = q[k] || '';
      findHistory(q);
      return;
    }
    findHistory({since: $('#hist-since').value || '15m', limit: 100});
  },
};

// ---- dead letters ---------------------------------------------------

const dlq = {cursor: '', filter: {}, shown: []};

function dlqFilter() {
  const f = {};
  if ($('#dlq-sink').value) f.sink = $('#dlq-sink').value;
  if ($('#dlq-q').value.trim()) f.q = $('#dlq-q').value.trim();
  return f;
}

async function loadDLQ(more) {
  const f = more ? dlq.filter : dlqFilter();
  const q = new URLSearchParams({...f, limit: '100'});
  if (more && dlq.cursor) q.set('cursor', dlq.cursor);
  $('#dlq-status').textContent = 'loading…';
  let page;
  try {
    page = await api('/api/dlq?' + q);
  } catch (e) {
    $('#dlq-status').textContent = e.message;
    return;
  }
  dlq.filter = f;
  dlq.cursor = page.next_cursor || '';
  if (!more) { dlq.shown = []; $('#dlq-table tbody').replaceChildren(); $('#dlq-all').checked = false; }
  dlq.shown.push(...page.items);
  for (const dl of page.items) $('#dlq-table tbody').append(dlqRow(dl));
  $('#dlq-more').hidden = !dlq.cursor;
  $('#dlq-empty').hidden = dlq.shown.length > 0;
  const what = [f.sink ? 'sink ' + f.sink : 'all sinks', f.q ? `error containing "${f.q}"` : null].filter(Boolean).join(', ');
  $('#dlq-status').textContent = `${fmt.num(dlq.shown.length)} dead letter${dlq.shown.length === 1 ? '' : 's'} shown${dlq.cursor ? ' (more below)' : ''}, newest first · ${what}`;
  selectionChanged();
}

function dlqRow(dl) {
  const box = h('input', {type: 'checkbox', 'aria-label': 'Select dead letter ' + dl.id, value: dl.id, onchange: selectionChanged});
  const tr = h('tr', {},
    h('td', {}, box),
    h('td', {class: 'mono'}, fmt.time(dl.dead_at)),
    h('td', {}, dl.sink),
    h('td', {}, h('span', {class: 'mono'}, dl.event_name || ''), ' ', h('span', {class: 'muted id'}, dl.event_id)),
    h('td', {class: 'num'}, String(dl.attempts)),
    h('td', {class: 'err'}, h('div', {class: 'long'}, dl.last_error)));
  clickable(tr, () => { select(tr); showDead(dl.id); });
  return tr;
}

function selected() { return $$('#dlq-table tbody input:checked').map((b) => b.value); }

function selectionChanged() {
  const n = selected().length;
  $('#dlq-replay-sel').disabled = $('#dlq-purge-sel').disabled = n === 0;
  $('#dlq-replay-sel').textContent = n ? `Replay ${n} selected` : 'Replay selected';
  $('#dlq-purge-sel').textContent = n ? `Purge ${n} selected` : 'Purge selected';
}

async function showDead(id) {
  const panel = $('#dlq-detail');
  let dl;
  try {
    dl = await api('/api/dlq/' + encodeURIComponent(id));
  } catch (e) {
    panel.replaceChildren(closeButton(panel), h('p', {class: 'error'}, e.message));
    panel.hidden = false;
    return;
  }
  panel.replaceChildren(closeButton(panel),
    h('h3', {}, badge('dead'), ' dead letter ', h('span', {class: 'mono'}, dl.id)),
    h('dl', {class: 'kv'},
      h('dt', {}, 'Sink'), h('dd', {}, dl.sink),
      h('dt', {}, 'Event'), h('dd', {}, (dl.event_name || '') + ' from ' + dl.source + ' · ', h('a', {href: '#events?id=' + encodeURIComponent(dl.event_id)}, dl.event_id)),
      h('dt', {}, 'Attempts'), h('dd', {}, String(dl.attempts)),
      h('dt', {}, 'First attempt'), h('dd', {}, fmt.time(dl.first_attempt)),
      h('dt', {}, 'Last attempt'), h('dd', {}, fmt.time(dl.last_attempt)),
      h('dt', {}, 'Died'), h('dd', {}, fmt.time(dl.dead_at))),
    h('h3', {}, 'Last error'), h('pre', {class: 'code wrap'}, dl.last_error),
    h('div', {class: 'controls'},
      h('button', {type: 'button', id: 'dlq-replay-one', onclick: () => act('replay', {ids: [dl.id]}, `Replay dead letter ${dl.id} to ${dl.sink}?`)}, 'Replay'),
      h('button', {type: 'button', id: 'dlq-purge-one', class: 'danger', onclick: () => act('purge', {ids: [dl.id]}, `Purge dead letter ${dl.id}? Its event is deleted for good.`)}, 'Purge')),
    ...(dl.event ? [h('h3', {}, 'Event'), h('pre', {class: 'code wrap', tabindex: 0}, fmt.json(dl.event))] :
      [h('p', {class: 'muted'}, 'The stored record could not be read as an event; it is kept as it is (' + (dl.raw ? dl.raw.length : 0) + ' characters of base64), and replaying it needs a build that reads it.')]));
  panel.hidden = false;
}

function confirmDialog(title, text) {
  return new Promise((resolve) => {
    const dlg = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    dlg.returnValue = '';
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), {once: true});
    dlg.showModal();
  });
}

async function act(verb, body, question) {
  if (!await confirmDialog(verb === 'replay' ? 'Replay' : 'Purge', question)) return;
  try {
    const res = await api('/api/dlq/' + verb, body);
    let msg = verb === 'replay' ? `Replayed ${res.replayed}.` : `Purged ${res.purged}.`;
    if (res.skipped && res.skipped.length) msg += ` Skipped ${res.skipped.length}: their sink is not configured.`;
    $('#dlq-detail').hidden = true;
    await loadDLQ(false);
    $('#dlq-status').textContent = msg + ' ' + $('#dlq-status').textContent;
  } catch (e) {
    $('#dlq-status').textContent = e.message;
  }
}

function matchQuestion(verb) {
  const f = dlq.filter;
  const what = [f.sink ? `of sink ${f.sink}` : 'of every sink', f.q ? `whose error contains "${f.q}"` : null].filter(Boolean).join(' ');
  return verb === 'replay' ? `Replay every dead letter ${what}?` : `Purge every dead letter ${what}? Their events are deleted for good.`;
}

$('#dlq-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadDLQ(false); });
$('#dlq-sink').addEventListener('change', () => loadDLQ(false));
$('#dlq-more').addEventListener('click', () => loadDLQ(true));
$('#dlq-all').addEventListener('change', (ev) => {
  $$('#dlq-table tbody input').forEach((b) => { b.checked = ev.target.checked; });
  selectionChanged();
});
$('#dlq-replay-sel').addEventListener('click', () => { const ids = selected(); act('replay', {ids}, `Replay ${ids.length} dead letter${ids.length > 1 ? 's' : ''}?`); });
$('#dlq-purge-sel').addEventListener('click', () => { const ids = selected(); act('purge', {ids}, `Purge ${ids.length} dead letter${ids.length > 1 ? 's' : ''}? Their events are deleted for good.`); });
$('#dlq-replay-all').addEventListener('click', () => act('replay', {all: true, ...dlq.filter}, matchQuestion('replay')));
$('#dlq-purge-all').addEventListener('click', () => act('purge', {all: true, ...dlq.filter}, matchQuestion('purge')));

pages.dlq = {
  enter(params, entering) {
    if (params.get('sink') !== null) $('#dlq-sink').value = params.get('sink');
    if (entering || params.get('sink') !== null) loadDLQ(false);
    if (params.get('id')) showDead(params.get('id'));
  },
};

// ---- try a payload --------------------------------------------------

$('#try-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const headers = {};
  for (const line of $('#try-headers').value.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  const body = {source: $('#try-source').value, headers};
  if ($('#try-payload').value.trim()) body.payload = $('#try-payload').value;
  if ($('#try-query').value.trim()) body.query = $('#try-query').value.trim();
  const out = $('#try-results');
  out.replaceChildren(h('p', {class: 'muted'}, 'routing…'));
  let res;
  try {
    res = await api('/api/try', body);
  } catch (e) {
    out.replaceChildren(h('div', {class: 'alert bad'}, e.message));
    return;
  }
  if (res.rejected) {
    out.replaceChildren(h('div', {class: 'alert bad'}, h('strong', {}, `The source would answer ${res.rejected.status} (${res.rejected.reason})`),
      h('pre', {class: 'code wrap'}, res.rejected.error)));
    return;
  }
  if (res.reply) {
    out.replaceChildren(h('div', {class: 'alert ok'}, 'A verification request: the source answers 200 ', h('code', {}, res.reply)));
    return;
  }
  out.replaceChildren(...res.trials.map(trialCard));
});

function trialCard(t) {
  const card = h('div', {class: 'card trial'});
  card.append(h('h3', {}, t.filtered ? badge('filtered') : badge('accepted'), ' ', t.event.event, t.event.status ? ' · ' + t.event.status : '',
    ' ', h('span', {class: 'muted mono'}, t.event.id)));
  if (t.filtered) {
    card.append(h('p', {}, 'The source\'s own events/filters drop this event before routing; it would be answered {"status":"filtered"}.'));
  } else {
    card.append(h('div', {class: 'scroll'}, h('table', {class: 'grid verdicts'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Rule'), h('th', {}, 'Verdict'), h('th', {}, 'Why'))),
      h('tbody', {}, t.rules.length ? t.rules.map((v) => h('tr', {},
        h('td', {}, h('strong', {}, v.name)), h('td', {}, badge(v.verdict)), h('td', {class: v.verdict === 'error' ? 'err' : 'muted'}, h('div', {class: 'long'}, v.reason || '')))) :
        h('tr', {}, h('td', {colspan: 3, class: 'muted'}, 'no rules'))))));
    card.append(h('p', {}, h('strong', {}, 'Sinks: '), t.sinks.length ? t.sinks.join(', ') : 'none (no rule matched and no unmatched sinks)'));
    for (const s of t.sinks) {
      const b = t.bodies[s];
      card.append(h('details', {open: t.sinks.length === 1}, h('summary', {}, `Body ${s} would receive`),
        h('pre', {class: 'code wrap', tabindex: 0}, typeof b === 'string' ? b : fmt.json(b))));
    }
  }
  card.append(h('details', {}, h('summary', {}, 'Normalized event'), h('pre', {class: 'code wrap', tabindex: 0}, fmt.json(t.event))));
  return card;
}

pages.try = {
  enter() { if (!$('#try-source').value && status) fillSelect($('#try-source'), status.sources.map((s) => s.name), null); },
};

// ---- config ---------------------------------------------------------

async function loadConfig() {
  let v;
  try {
    v = await api('/api/config');
  } catch (e) {
    $('#config-disk').replaceChildren(h('div', {class: 'alert bad'}, e.message));
    return;
  }
  $('#config-meta').textContent = ` ${v.path || '(no file)'} · applied ${fmt.ago(v.reload.at)} by ${v.reload.trigger}` + (v.reload.checksum ? ' · ' + v.reload.checksum : '');
  $('#config-running').textContent = v.running;
  const disk = [];
  if (v.reload.refused) {
    disk.push(h('div', {class: 'alert bad'}, h('strong', {}, `Reload refused ${fmt.ago(v.reload.refused.at)} (${v.reload.refused.trigger}); this config still runs:`),
      h('ul', {}, v.reload.refused.problems.map((p) => h('li', {class: 'mono'}, p)))));
  }
  switch (v.disk.state) {
  case 'same': disk.push(h('div', {class: 'alert ok'}, 'The file on disk is what runs.')); break;
  case 'none': disk.push(h('div', {class: 'alert warn'}, 'The daemon was started without a config file to compare with.')); break;
  case 'unreadable': disk.push(h('div', {class: 'alert bad'}, 'The file cannot be read: ' + v.disk.error)); break;
  case 'invalid': disk.push(h('div', {class: 'alert bad'}, h('strong', {}, 'The file on disk is not valid; it would be refused:'),
    h('ul', {}, v.disk.problems.map((p) => h('li', {class: 'mono'}, p))))); break;
  case 'differs':
    disk.push(h('div', {class: 'alert warn'}, 'The file on disk differs from what runs (not reloaded yet, or refused). ',
      h('span', {class: 'muted'}, '− running, + file')));
    disk.push(h('pre', {class: 'code diff', tabindex: 0}, diffLines(v.disk.diff)));
    break;
  }
  $('#config-disk').replaceChildren(...disk);
}

// diffLines shows each change with three lines around it; a longer run of
// unchanged lines folds into one line saying how many, so that a change
// at the end of a long config is seen without scrolling.
function diffLines(diff) {
  const near = diff.map(() => false);
  diff.forEach((l, i) => {
    if (l.op !== ' ') for (let j = Math.max(0, i - 3); j <= Math.min(diff.length - 1, i + 3); j++) near[j] = true;
  });
  const out = [];
  for (let i = 0; i < diff.length;) {
    if (near[i]) {
      const l = diff[i++];
      out.push(h('span', {class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : null}, l.op + ' ' + l.text + '\n'));
      continue;
    }
    let j = i;
    while (j < diff.length && !near[j]) j++;
    out.push(h('span', {class: 'fold'}, `  … ${j - i} unchanged line${j - i === 1 ? '' : 's'} …\n`));
    i = j;
  }
  return out;
}
$('#config-refresh').addEventListener('click', loadConfig);
pages.config = {enter: loadConfig};

// ---- start ----------------------------------------------------------

(async function start() {
  try {
    const s = await api('/api/session');
    if (s.auth_required) $('#logout').hidden = !s.authenticated;
    if (s.auth_required && !s.authenticated) { showLogin(); return; }
  } catch (e) {
    setConn(false, 'daemon unreachable');
  }
  await refreshStatus();
  pollStatus(10000);
  route();
})();
