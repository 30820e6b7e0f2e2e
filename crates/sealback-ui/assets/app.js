// sealback local UI. Talks only to the sealback process that served it (same origin, with the
// session token traded for the launch code in the address). A passkey's PRF output goes from
// the browser to that process and nowhere else; the page keeps no copy of it.
'use strict';

// The session token: traded once for the launch code in the printed address, then kept in
// this tab's sessionStorage (per origin, so per port) and sent in a header; never in the address.
const TOKEN_KEY = 'sealback-session';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
const $ = (id) => document.getElementById(id);
let status = null;
let pendingRecovery = null; // {ceremony, purpose}
let passwordPurpose = 'setup';
let features = null; // what the key vault offers (GET /api/features)
let vaultPurpose = 'setup';

// ---------- helpers ----------
function toB64(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
function fromB64(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function wipe(buf) { try { new Uint8Array(buf).fill(0); } catch (_) { /* detached */ } }
function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0; let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
}
function when(unixSeconds) {
  if (!unixSeconds) return 'never';
  return new Date(unixSeconds * 1000).toLocaleString();
}
const sentence = (t) => { const s = t.charAt(0).toUpperCase() + t.slice(1); return /[.!?]$/.test(s) ? s : s + '.'; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KIND = { 'passkey': 'Passkey', 'recovery-key': '64-digit key', 'vault-password': 'Password (key vault)', 'vault-passkey': 'Passkey (key vault)' };

class ApiError extends Error {
  constructor(body) { super(body.message || 'request failed'); this.code = body.error; this.hint = body.hint; }
}

async function api(path, body) {
  const init = { headers: { 'X-Sealback-Token': token } };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError({ error: 'offline', message: 'sealback is not answering.', hint: 'Is `sealback ui` still running? Start it again and open the address it prints.' });
  }
  const json = await res.json().catch(() => ({ error: 'other', message: 'unexpected answer (' + res.status + ')' }));
  if (!res.ok) throw new ApiError(json);
  return json;
}

// ---------- messages ----------
// Every message shown gets the next sequence number (data-seq), so a reader (a person's screen
// reader, or a test) can tell a new message from one left by an earlier action.
let messageSeq = 0;
// A message belongs to the screen it was said on, or to `view` when the action that said it
// leads the person there (it is cleared when they go to any other screen).
function say(text, hint, ok, view = currentView()) {
  const box = $('message');
  box.dataset.seq = String(++messageSeq);
  $('message-text').textContent = text;
  $('message-hint').textContent = hint || '';
  box.classList.toggle('ok', !!ok);
  box.setAttribute('role', ok ? 'status' : 'alert');
  box.hidden = false;
  box.dataset.code = ok ? 'ok' : 'error';
  box.dataset.view = view;
  $('message-handoff').hidden = true;
}
function clearMessage() { $('message').hidden = true; delete $('message').dataset.code; }

// What a failed WebAuthn call or API call means to a person, and what to do.
function explain(err) {
  if (err && err.name === 'NotAllowedError') {
    return ['The passkey request was cancelled or timed out. Nothing was changed.',
      'Try again and confirm with your fingerprint, face or screen lock. If this device does not have your passkey, use your 64-digit key or password instead.', 'cancelled'];
  }
  if (err && err.name === 'InvalidStateError') {
    return ['This passkey provider already holds a passkey for this backup.', 'Use it to unlock, or pick another provider.', 'exists'];
  }
  if (err && (err.name === 'NotSupportedError' || err.name === 'SecurityError')) {
    return ['This browser cannot use passkeys on this page.', 'Open the address sealback printed when it started in a current browser, or use your 64-digit key.', 'unsupported'];
  }
  if (err instanceof ApiError) return [sentence(err.message), err.hint ? sentence(err.hint) : '', err.code];
  return ['Something went wrong: ' + (err && err.message ? err.message : err), 'Try again. If it happens again, stop sealback ui (Ctrl+C) and start it again.', 'other'];
}
function fail(err) {
  const [text, hint, code] = explain(err);
  say(text, hint, false);
  $('message').dataset.code = code;
  // The passkey belongs to the page's other address: offer to continue there.
  $('message-handoff').hidden = code !== 'other_address';
}

/// Moves this tab to the page's other address (sealback's own, or the shared localhost one
/// for passkeys of older versions) with a one-time code, on the same screen.
async function handoff() {
  const r = await api('/api/session/handoff', {});
  location.assign(r.url + location.hash);
}

async function busy(button, work) {
  if (button) button.disabled = true;
  try { return await work(); } finally { if (button) button.disabled = false; }
}

// ---------- passkeys ----------
/// Asks the passkey provider to drop a passkey that was made but is not a key of this backup
/// (best effort: a provider may ignore it), so that no orphan is left behind.
function forgetPasskey(rpId, rawId) {
  if (rawId && window.PublicKeyCredential && PublicKeyCredential.signalUnknownCredential) {
    PublicKeyCredential.signalUnknownCredential({ rpId, credentialId: toB64(rawId) }).catch(() => {});
  }
}

function noPrf(rpId, rawId) {
  const e = new Error('no PRF');
  e.code = 'no_prf';
  forgetPasskey(rpId, rawId);
  return e;
}

async function createPasskey(purpose, name) {
  if (!window.PublicKeyCredential) throw noPrf(null, null);
  const b = await api('/api/passkey/create/begin', { purpose, name });
  const salt = fromB64(b.prf_input);
  const cred = await navigator.credentials.create({ publicKey: {
    rp: { id: b.rp_id, name: b.rp_name },
    user: { id: fromB64(b.user_id), name: b.user_name, displayName: 'Chat backup' },
    challenge: fromB64(b.challenge),
    pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -257 }],
    authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    excludeCredentials: b.exclude_credentials.map((id) => ({ type: 'public-key', id: fromB64(id) })),
    timeout: 120000,
    extensions: { prf: { eval: { first: salt } } },
  } });
  const ext = cred.getClientExtensionResults();
  let output = ext.prf && ext.prf.results && ext.prf.results.first;
  if (!output) {
    if (!ext.prf || ext.prf.enabled !== true) throw noPrf(b.rp_id, cred.rawId);
    // PRF is enabled but was not evaluated at creation: one assertion evaluates it.
    const a = await navigator.credentials.get({ publicKey: {
      challenge: crypto.getRandomValues(new Uint8Array(32)), rpId: b.rp_id,
      allowCredentials: [{ type: 'public-key', id: cred.rawId }], userVerification: 'required',
      timeout: 120000, extensions: { prf: { eval: { first: salt } } },
    } });
    const r = a.getClientExtensionResults();
    output = r.prf && r.prf.results && r.prf.results.first;
    if (!output) throw noPrf(b.rp_id, cred.rawId);
  }
  const body = { ceremony: b.ceremony, credential_id: toB64(cred.rawId), prf_output: toB64(output) };
  wipe(output);
  try {
    return await api('/api/passkey/create/finish', body);
  } catch (e) {
    forgetPasskey(b.rp_id, cred.rawId);
    throw e;
  }
}

/// The key vault's passkey mode (a provider without PRF): the vault is the relying party; the
/// browser's credential goes to it through this process, with any PRF result removed.
function credentialJSON(cred) {
  const json = cred.toJSON();
  if (json.clientExtensionResults) delete json.clientExtensionResults.prf;
  return json;
}

async function createVaultPasskey(purpose, name) {
  const b = await api('/api/vault-passkey/begin', { purpose, name });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(b.options.publicKey);
  const cred = await navigator.credentials.create({ publicKey });
  try {
    return await api('/api/vault-passkey/finish', { ceremony: b.ceremony, credential: credentialJSON(cred) });
  } catch (e) {
    forgetPasskey(publicKey.rp.id || location.hostname, cred.rawId);
    throw e;
  }
}

async function unlockWithVaultPasskey() {
  const b = await api('/api/unlock/vault-passkey/begin', {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(b.options.publicKey);
  const a = await navigator.credentials.get({ publicKey });
  return api('/api/unlock/vault-passkey/finish', { ceremony: b.ceremony, credential: credentialJSON(a) });
}

async function unlockWithPasskey() {
  const types = status ? status.keys.map((k) => k.type) : [];
  if (!types.includes('passkey') && types.includes('vault-passkey')) return unlockWithVaultPasskey();
  const b = await api('/api/unlock/passkey/begin', {});
  const publicKey = { challenge: fromB64(b.challenge), rpId: b.rp_id, userVerification: 'required', timeout: 120000 };
  if (b.shared_prf_input) {
    // Every browser passkey of this backup uses one PRF input: let the person pick any.
    publicKey.extensions = { prf: { eval: { first: fromB64(b.shared_prf_input) } } };
  } else {
    publicKey.allowCredentials = b.credentials.map((c) => ({ type: 'public-key', id: fromB64(c.id) }));
    const byCred = {};
    for (const c of b.credentials) byCred[c.id] = { first: fromB64(c.prf_input) };
    publicKey.extensions = { prf: { evalByCredential: byCred } };
  }
  const a = await navigator.credentials.get({ publicKey });
  const r = a.getClientExtensionResults();
  const output = r.prf && r.prf.results && r.prf.results.first;
  const body = { ceremony: b.ceremony, credential_id: toB64(a.rawId), prf_output: output ? toB64(output) : null };
  if (output) wipe(output);
  return api('/api/unlock/passkey/finish', body);
}

// ---------- unlock widget ----------
function mountUnlock(slot) {
  if (slot.firstChild) return;
  slot.appendChild($('unlock-template').content.cloneNode(true));
  slot.querySelector('.unlock-passkey').addEventListener('click', (ev) => busy(ev.target, async () => {
    clearMessage();
    try { await unlockWithPasskey(); say('Unlocked.', '', true); await refresh(); } catch (e) { fail(e); }
  }));
  slot.querySelector('.unlock-recovery-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const field = slot.querySelector('.unlock-recovery');
    busy(ev.submitter, async () => {
      clearMessage();
      try { await api('/api/unlock/recovery-key', { recovery_key: field.value }); field.value = ''; say('Unlocked.', '', true); await refresh(); } catch (e) { fail(e); }
    });
  });
  slot.querySelector('.unlock-password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const field = slot.querySelector('.unlock-password');
    busy(ev.submitter, async () => {
      clearMessage();
      try { await api('/api/unlock/password', { password: field.value }); field.value = ''; say('Unlocked.', '', true); await refresh(); } catch (e) { fail(e); }
    });
  });
}

// ---------- views ----------
const VIEWS = ['backup', 'encryption', 'keys', 'snapshots', 'restore', 'recovery', 'password'];
const TITLES = { backup: 'Chat backup', encryption: 'End-to-end encrypted backup', keys: 'Keys', snapshots: 'Snapshots', restore: 'Restore', recovery: 'Your 64-digit key', password: 'Password' };

function show(view) {
  if (!VIEWS.includes(view)) view = 'backup';
  if ($('message').dataset.view !== view) clearMessage();
  for (const v of VIEWS) $('view-' + v).hidden = v !== view;
  for (const a of document.querySelectorAll('.tabs a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  $('crumb-here').textContent = TITLES[view];
  document.title = TITLES[view] + ' · sealback';
  render();
  if (view === 'snapshots' || view === 'restore') loadSnapshots();
}

function currentView() { const v = (location.hash || '#backup').slice(1); return VIEWS.includes(v) ? v : 'backup'; }

function go(view) {
  if (currentView() === view) show(view); else location.hash = '#' + view;
  $('main').focus();
}

function unlocksWith() {
  const kinds = [...new Set(status.keys.map((k) => KIND[k.type] || k.type))];
  return kinds.join(', ') || 'no key';
}

// Other scripts of the page (settings.js) add views here and hooks that render() runs last.
const renderHooks = [];

function render() {
  if (!status) return;
  const on = status.initialized;
  const unlocked = status.unlocked;
  $('backup-off').hidden = on;
  $('backup-locked').hidden = !on || unlocked;
  $('backup-on').hidden = !on || !unlocked;
  $('enc-on').hidden = !on;
  $('enc-off').hidden = on;
  $('enc-keys').textContent = unlocksWith();
  $('unlocks-with').textContent = unlocksWith();
  $('protected').textContent = status.paths.length ? status.paths.join(', ') : 'nothing configured (start sealback ui with --path)';
  const snaps = status.snapshots || [];
  const last = snaps.length ? snaps[snaps.length - 1] : null;
  $('last-backup').textContent = last ? new Date(last.time_unix_ns / 1e6).toLocaleString() : 'never';
  $('backup-size').textContent = last ? bytes(last.bytes_read) : '–';
  $('account-row').hidden = !!status.vault.account;
  $('keys-locked').hidden = !on || unlocked;
  $('keys-actions').hidden = !on || !unlocked;
  $('snapshots-locked').hidden = !on || unlocked;
  $('restore-locked').hidden = !on || unlocked;
  $('restore-form').hidden = !on;
  for (const slot of document.querySelectorAll('.unlock-slot')) {
    mountUnlock(slot);
    // Only the ways this backup can actually be opened.
    const has = (...types) => status.keys.some((k) => types.includes(k.type));
    slot.querySelector('.unlock-password-box').hidden = !has('vault-password');
    slot.querySelector('.unlock-recovery-box').hidden = !has('recovery-key');
    slot.querySelector('.unlock-passkey').hidden = !has('passkey', 'vault-passkey');
  }
  const page = status.page || {};
  $('shared-origin').hidden = !page.shared_origin;
  // A development key vault's passkeys belong to localhost: they are made here.
  $('shared-origin-vault').hidden = !page.shared_origin || !status.vault.url || (on && !unlocked);
  $('older-passkeys').hidden = !!page.shared_origin || !page.older_passkeys || !unlocked;
  $('adopted-address').hidden = !page.adopted_address || !on;
  renderKeys();
  for (const hook of renderHooks) hook();
}

/// A table row; each cell carries its column's label, shown before the value on a phone
/// (where the header row is not).
function tableRow(table, cells) {
  const labels = [...$(table).querySelectorAll('thead th')].map((th) => th.textContent.trim());
  const tr = document.createElement('tr');
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.dataset.label = labels[i] === 'Actions' ? '' : labels[i] || '';
    if (typeof c === 'string') td.textContent = c; else if (c) td.appendChild(c);
    tr.appendChild(td);
  });
  return tr;
}

function renderKeys() {
  const body = $('keys-body');
  body.textContent = '';
  const label = (k) => 'Remove ' + (KIND[k.type] || k.type) + ' "' + k.name + '", added ' + when(k.created_unix);
  const labels = status.keys.map(label);
  status.keys.forEach((k, i) => {
    let b = null;
    if (status.unlocked) {
      b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = 'Remove';
      // Unique even for keys of one name from before names were made unique.
      const twin = labels.filter((l) => l === labels[i]).length > 1;
      b.setAttribute('aria-label', labels[i] + (twin ? ' (row ' + (i + 1) + ')' : ''));
      b.addEventListener('click', () => removeKey(k));
    }
    body.appendChild(tableRow('keys-table', [KIND[k.type] || k.type, k.name, when(k.created_unix), k.last_used_unix ? when(k.last_used_unix) : '–', b]));
  });
}

async function refresh() {
  try {
    status = await api('/api/status');
    render();
  } catch (e) { fail(e); }
}

// ---------- jobs ----------
async function follow(jobId, bar, text, verb) {
  for (;;) {
    const j = await api('/api/jobs/' + encodeURIComponent(jobId));
    const pct = j.total_bytes > 0 ? Math.min(100, Math.floor((100 * j.done_bytes) / j.total_bytes)) : 0;
    if (j.state === 'running') {
      bar.value = pct;
      text.textContent = j.total_bytes > 0
        ? verb + '… ' + pct + '% (' + bytes(j.done_bytes) + ' of ' + bytes(j.total_bytes) + ')'
        : verb + '… looking at your chats' + (j.done_bytes > 0 ? ' (' + bytes(j.done_bytes) + ' so far)' : '');
    } else {
      if (j.state === 'done') { bar.value = 100; }
      return j;
    }
    await sleep(100);
  }
}

async function backupNow(button) {
  clearMessage();
  $('backup-job').hidden = false;
  $('backup-progress').value = 0;
  $('backup-status').textContent = 'Starting…';
  await busy(button, async () => {
    try {
      const { job } = await api('/api/backup', {});
      const j = await follow(job, $('backup-progress'), $('backup-status'), 'Backing up');
      if (j.state === 'done') {
        const r = j.result;
        $('backup-status').textContent = 'Backup complete: ' + r.files + ' files, ' + bytes(r.bytes_read) + ' checked, ' + bytes(r.bytes_added) + ' uploaded.';
      } else {
        $('backup-status').textContent = 'Backup failed.';
        fail(new ApiError(j.error));
      }
    } catch (e) { fail(e); $('backup-status').textContent = 'Backup failed.'; }
    await refresh();
  });
}

// ---------- snapshots ----------
async function loadSnapshots() {
  if (!status || !status.initialized || !status.unlocked) {
    $('chart-figure').hidden = true; $('snapshots-table').hidden = true; $('snapshots-empty').hidden = true;
    return;
  }
  let list;
  try { list = (await api('/api/snapshots')).snapshots; } catch (e) { fail(e); return; }
  $('snapshots-empty').hidden = list.length > 0;
  $('snapshots-table').hidden = list.length === 0;
  $('chart-figure').hidden = list.length === 0;
  const body = $('snapshots-body');
  body.textContent = '';
  const select = $('restore-snapshot');
  select.textContent = '';
  const latest = document.createElement('option');
  latest.value = 'latest'; latest.textContent = 'The latest';
  select.appendChild(latest);
  for (const s of [...list].reverse()) {
    body.appendChild(tableRow('snapshots-table', [new Date(s.time_unix_ns / 1e6).toLocaleString(), s.short, String(s.files), bytes(s.bytes_read), bytes(s.bytes_added)]));
    const o = document.createElement('option');
    o.value = s.id; o.textContent = new Date(s.time_unix_ns / 1e6).toLocaleString() + ' (' + s.short + ', ' + bytes(s.bytes_read) + ')';
    select.appendChild(o);
  }
  drawChart(list);
}

/// Total size and new data of each snapshot as two bars side by side, newest first like the
/// table, with each snapshot's date under its bars.
function drawChart(list) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 600; const H = 200; const pad = 24; const dateRow = 20;
  const newestFirst = [...list].reverse();
  const max = Math.max(1, ...list.map((s) => s.bytes_read));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + dateRow + 4}`);
  svg.setAttribute('role', 'img');
  const latest = newestFirst.length ? newestFirst[0].bytes_read : 0;
  const added = list.map((s) => s.bytes_added);
  svg.setAttribute('aria-label', `${list.length} snapshots, newest first; the latest is ${bytes(latest)}; new data per snapshot from ${bytes(Math.min(...added))} to ${bytes(Math.max(...added))}`);
  const add = (name, attrs, text) => {
    const el = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  const slot = (W - pad) / Math.max(newestFirst.length, 1);
  const bar = Math.max(3, Math.min(24, slot * 0.3));
  newestFirst.forEach((s, i) => {
    const mid = pad + i * slot + slot / 2;
    [[s.bytes_read, 'bar-total', 'total'], [s.bytes_added, 'bar-added', 'new']].forEach(([value, cls, what], j) => {
      const h = Math.max(1, (value / max) * (H - 8));
      // styled by app.css: the CSP allows no inline styles
      const r = add('rect', { x: mid - bar + j * bar, width: bar, y: H - h, height: h, class: cls });
      const t = document.createElementNS(NS, 'title');
      t.textContent = s.short + ': ' + what + ' ' + bytes(value);
      r.appendChild(t);
    });
    const d = new Date(s.time_unix_ns / 1e6);
    add('text', { x: mid, y: H + dateRow - 4, class: 'date', 'text-anchor': 'middle' },
      d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) + (newestFirst.length <= 6 ? ' ' + d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) : ''));
  });
  add('line', { x1: pad, x2: W, y1: H, y2: H, class: 'axis' });
  add('text', { x: 0, y: 12, class: 'axis-label' }, bytes(max));
  $('chart').textContent = '';
  $('chart').appendChild(svg);
}

// ---------- turning on, adding keys ----------
async function passkeyFlow(purpose, button) {
  clearMessage();
  $('no-prf').hidden = true;
  await busy(button, async () => {
    try {
      await createPasskey(purpose, uniqueName('Passkey'));
      await refresh();
      if (purpose === 'setup') { await offerRecoveryKey('your passkey'); return; }
      go('keys');
      say('Passkey added. It unlocks this backup from now on.', '', true);
    } catch (e) {
      if (e.code === 'no_prf') {
        const vault = features && features.vault_passkey && features.vault_passkey.offered && status.vault.url;
        vaultPurpose = purpose;
        $('no-prf-vault-box').hidden = !vault;
        if (purpose === 'setup') {
          $('no-prf').hidden = false;
          $('no-prf').scrollIntoView();
          (vault ? $('no-prf-vault') : $('no-prf-recovery')).focus();
        }
        say('This passkey provider cannot lock your backup key to a passkey, so a passkey from it cannot protect your backup by itself.',
          vault ? "Use the key vault's passkey mode, a 64-digit key or a password instead." : 'Use a 64-digit key or a password instead.', false);
        $('message').dataset.code = 'no_prf';
      } else { fail(e); }
    }
  });
}

async function vaultPasskeyFlow(purpose, button) {
  clearMessage();
  await busy(button, async () => {
    try {
      await createVaultPasskey(purpose, uniqueName('Passkey (key vault)'));
      $('no-prf').hidden = true;
      await refresh();
      if (purpose === 'setup') { await offerRecoveryKey('your passkey through the key vault'); return; }
      go('keys');
      say('Passkey added. It unlocks this backup through the key vault.',
        'The key vault allows 10 failed sign-ins, then destroys its half of the key.', true);
    } catch (e) { fail(e); }
  });
}

/// Which kinds of key the key vault's operator offers now (staged rollout), on the setup
/// screen and on Keys alike. A vault that cannot be reached offers nothing.
const OFFERS = [
  ['passkey', ['setup-passkey', 'add-passkey'], ['passkey-not-offered', 'add-passkey-not-offered']],
  ['password', ['setup-password', 'add-password'], ['password-not-offered', 'add-password-not-offered']],
];
async function loadFeatures() {
  let failure = null;
  try { features = await api('/api/features'); } catch (e) { features = {}; failure = e; }
  const unreachable = failure && failure.code === 'vault_unreachable';
  for (const [kind, buttons, notes] of OFFERS) {
    const f = features[kind];
    const offered = !failure && (!f || f.offered);
    const why = unreachable ? 'Not available now: the key vault cannot be reached.' : 'Not available yet: ' + ((f && f.reason) || 'not offered here') + '.';
    for (const b of buttons) $(b).disabled = !offered;
    for (const n of notes) { $(n).hidden = offered; $(n).textContent = offered ? '' : why; }
  }
  if (unreachable) {
    say('The key vault cannot be reached, so passkeys and passwords cannot be added right now.',
      'A 64-digit key works without it. Check your internet connection, then reload this page.', false);
    $('message').dataset.code = 'vault_unreachable';
  } else if (failure && !['no_token', 'offline'].includes(failure.code)) {
    fail(failure); // a key vault that refuses this device (its own words and hint)
  }
}

async function recoveryFlow(purpose, button, afterPasskey = false) {
  clearMessage();
  await busy(button, async () => {
    try {
      const b = await api('/api/recovery-key/begin', { purpose, name: uniqueName('64-digit key') });
      pendingRecovery = { ceremony: b.ceremony, purpose, afterPasskey };
      $('recovery-key').textContent = b.recovery_key;
      $('recovery-show').hidden = false;
      $('recovery-confirm').hidden = true;
      $('recovery-copied').textContent = '';
      $('recovery-why').hidden = !afterPasskey;
      $('recovery-skip').hidden = !afterPasskey;
      go('recovery');
    } catch (e) { fail(e); }
  });
}

/// Right after turning on with a passkey only: the 64-digit key in the same step (as the CLI
/// makes one), because losing every passkey would lose the backups.
async function offerRecoveryKey(how) {
  await recoveryFlow('add_key', null, true);
  say('End-to-end encrypted backup is on. It unlocks with ' + how + '.', 'One more step: keep a 64-digit key too.', true);
}

/// A name no key of this backup has yet ("64-digit key", then "64-digit key 2", ...), so that
/// keys can be told apart.
function uniqueName(base) {
  const taken = new Set(status ? status.keys.map((k) => k.name) : []);
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(base + ' ' + n)) n++;
  return base + ' ' + n;
}

function forgetShownKey() {
  pendingRecovery = null;
  $('recovery-key').textContent = '';
  $('recovery-confirm-input').value = '';
}

async function removeKey(k) {
  const dlg = $('remove-dialog');
  $('remove-what').textContent = (KIND[k.type] || k.type) + ' "' + k.name + '", added ' + when(k.created_unix) + '.';
  dlg.returnValue = '';
  dlg.showModal();
  dlg.addEventListener('close', async () => {
    if (dlg.returnValue !== 'remove') return;
    clearMessage();
    try {
      const r = await api('/api/keys/remove', { id: k.id, rotate: $('remove-rotate').checked });
      say(r.rotated ? 'Key removed, and the backup key was replaced: the removed key cannot open new backups.' : 'Key removed.',
        r.rotated ? 'Older snapshots stay readable to the removed key until they are deleted.' : '', true);
    } catch (e) { fail(e); }
    await refresh();
  }, { once: true });
}

// ---------- wiring ----------
function wire() {
  $('message-close').addEventListener('click', clearMessage);
  $('message-handoff').addEventListener('click', (ev) => busy(ev.target, () => handoff().catch(fail)));
  $('shared-origin-vault').addEventListener('click', (ev) => vaultPasskeyFlow(status.initialized ? 'add_key' : 'setup', ev.target));
  $('shared-origin-back').addEventListener('click', (ev) => busy(ev.target, () => handoff().catch(fail)));
  $('backup-now').addEventListener('click', (ev) => backupNow(ev.target));
  $('lock-now').addEventListener('click', async () => { try { await api('/api/lock', {}); await refresh(); } catch (e) { fail(e); } });
  $('setup-passkey').addEventListener('click', (ev) => passkeyFlow('setup', ev.target));
  $('setup-recovery').addEventListener('click', (ev) => recoveryFlow('setup', ev.target));
  $('no-prf-recovery').addEventListener('click', (ev) => { $('no-prf').hidden = true; recoveryFlow('setup', ev.target); });
  $('no-prf-vault').addEventListener('click', (ev) => vaultPasskeyFlow(vaultPurpose, ev.target));
  $('setup-password').addEventListener('click', () => { passwordPurpose = 'setup'; go('password'); });
  $('no-prf-password').addEventListener('click', () => { $('no-prf').hidden = true; passwordPurpose = 'setup'; go('password'); });
  $('add-passkey').addEventListener('click', (ev) => passkeyFlow('add_key', ev.target));
  $('add-recovery').addEventListener('click', (ev) => recoveryFlow('add_key', ev.target));
  $('add-password').addEventListener('click', () => { passwordPurpose = 'add_key'; go('password'); });
  $('recovery-copy').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText($('recovery-key').textContent); $('recovery-copied').textContent = 'Copied.'; } catch (_) { $('recovery-copied').textContent = 'Copying is not allowed here: select the key and copy it.'; }
  });
  $('recovery-saved').addEventListener('click', () => {
    $('recovery-show').hidden = true;
    $('recovery-confirm').hidden = false;
    $('recovery-confirm-input').value = '';
    $('recovery-confirm-input').focus();
  });
  $('recovery-back').addEventListener('click', () => { $('recovery-show').hidden = false; $('recovery-confirm').hidden = true; });
  $('recovery-skip').addEventListener('click', () => {
    forgetShownKey();
    go('backup');
    say('End-to-end encrypted backup is on. It unlocks with your passkey only.',
      'If you lose every passkey, you lose your backups. You can add a 64-digit key on the Keys screen at any time.', true);
  });
  $('recovery-confirm').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!pendingRecovery) return;
    busy(ev.submitter, async () => {
      clearMessage();
      try {
        await api('/api/recovery-key/finish', { ceremony: pendingRecovery.ceremony, confirm: $('recovery-confirm-input').value });
        const { purpose, afterPasskey } = pendingRecovery;
        forgetShownKey();
        await refresh();
        go(purpose === 'add_key' && !afterPasskey ? 'keys' : 'backup');
        if (afterPasskey) say('End-to-end encrypted backup is on. It unlocks with your passkey and your 64-digit key.', '', true);
        else say(purpose === 'setup' ? 'End-to-end encrypted backup is on. It unlocks with your 64-digit key.' : '64-digit key added.', '', true);
      } catch (e) {
        // A typo keeps the key and the step: the person corrects it or looks at the key again.
        if (e.code === 'expired') { forgetShownKey(); go(status && status.initialized ? 'keys' : 'encryption'); }
        fail(e);
      }
    });
  });
  $('password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const pw = $('password-new').value;
    if (pw !== $('password-repeat').value) { say('The passwords differ.', 'Type the same password twice. Nothing was changed.', false); return; }
    busy(ev.submitter, async () => {
      clearMessage();
      try {
        await api('/api/password/add', { purpose: passwordPurpose, password: pw, account: $('password-account').value || null, name: uniqueName('Password') });
        $('password-new').value = ''; $('password-repeat').value = '';
        await refresh();
        go(passwordPurpose === 'setup' ? 'backup' : 'keys');
        say(passwordPurpose === 'setup' ? 'End-to-end encrypted backup is on. It unlocks with your password.' : 'Password added.',
          'The key vault allows 10 wrong passwords, then destroys this key.', true);
      } catch (e) { fail(e); }
    });
  });
  $('restore-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(ev.submitter, async () => {
      clearMessage();
      try {
        if (!status.unlocked) {
          // Unlock with the passkey in the browser, then restore.
          await unlockWithPasskey();
          await refresh();
        }
        $('restore-job').hidden = true;
        const { job } = await api('/api/restore', { snapshot: $('restore-snapshot').value, target: $('restore-target').value });
        // Shown only once the restore exists: a refused folder never leaves "Starting…" behind.
        $('restore-job').hidden = false;
        $('restore-progress').value = 0;
        $('restore-status').textContent = 'Starting…';
        const j = await follow(job, $('restore-progress'), $('restore-status'), 'Restoring');
        if (j.state === 'done') {
          $('restore-status').textContent = 'Restore complete: ' + j.result.files + ' files, ' + bytes(j.result.bytes) + ' into ' + j.result.target + '.' + leftOutText(j.result.left_out);
        } else {
          $('restore-status').textContent = 'Restore failed.';
          fail(new ApiError(j.error));
        }
      } catch (e) { fail(e); }
      await refresh();
    });
  });
  window.addEventListener('hashchange', () => show(currentView()));
}

// Trades the launch code in the address for a session (once), and takes it out of the address.
async function startSession() {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (!code) return;
  history.replaceState(null, '', location.pathname + location.hash);
  const res = await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) })
    .catch(() => null);
  if (res && res.ok) {
    token = (await res.json()).token;
    sessionStorage.setItem(TOKEN_KEY, token);
    return null;
  }
  // A spent code with a session already in this tab (a reload) needs nothing more.
  return token ? null : await res.json().catch(() => null);
}

document.addEventListener('DOMContentLoaded', async () => {
  const refused = await startSession();
  wire();
  await refresh();
  await loadFeatures();
  show(currentView());
  // Said last, so that it is what the person reads.
  if (refused) fail(new ApiError(refused));
  document.body.dataset.ready = '1';
});
