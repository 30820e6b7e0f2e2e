// sealback local UI, the Settings area: change password, turn off, key names, automatic
// backups, videos, password check. Loaded after app.js and built on its helpers ($, api, say,
// fail, busy, refresh, go, status); it adds its view and a render hook, and changes nothing else.
'use strict';

VIEWS.push('settings');
TITLES.settings = 'Settings';

function renderSettings() {
  const on = status.initialized;
  const unlocked = status.unlocked;
  $('settings-off').hidden = on;
  $('settings-locked').hidden = !on || unlocked;
  $('settings-on').hidden = !on || !unlocked;
  const hasPassword = status.keys.some((k) => k.type === 'vault-password');
  $('set-password-form').hidden = !hasPassword;
  $('set-password-none').hidden = hasPassword;
  $('set-off-repo').textContent = status.repo;
  renderKeyNames();
  if (on) loadDeviceSettings();
}
renderHooks.push(renderSettings);

// ---------- automatic backups and videos ----------
const SCHEDULER_SAYS = {
  off: 'Automatic backups are off.',
  locked: 'Waiting: unlock this session to let automatic backups run.',
  due: 'Due now.',
  running: 'Backing up now…',
  waiting_for_power: 'Due, waiting for AC power.',
};

// Every render loads the device settings again (an unlock, a finished job): what a person has
// changed in the forms and not saved yet is kept, not overwritten by the load.
let deviceFormsEdited = false;

async function loadDeviceSettings() {
  try { showDeviceSettings(await api('/api/settings')); } catch (e) { fail(e); }
}

function showDeviceSettings(d) {
  if (!deviceFormsEdited) {
    $('set-auto-every').value = d.schedule;
    $('set-auto-ac').checked = d.only_on_ac_power;
    $('set-videos').checked = d.include_videos;
  }
  $('set-auto-power').textContent = d.power === 'unknown'
    ? 'This computer does not say whether it runs on AC power, so automatic backups do not wait for it.'
    : (d.power === 'battery' ? 'This computer runs on battery now.' : 'This computer is on AC power now.');
  const s = d.scheduler || {};
  $('set-auto-last').textContent = s.last_backup_unix_ns ? new Date(s.last_backup_unix_ns / 1e6).toLocaleString() : 'never';
  $('set-auto-next').textContent = SCHEDULER_SAYS[s.state]
    || (s.next_due_unix_ns ? new Date(s.next_due_unix_ns / 1e6).toLocaleString() : '–');
  $('view-settings').dataset.scheduler = s.state || '';
  showPasswordCheck(d.password_check || {});
}

// ---------- password check reminder ----------
function showPasswordCheck(c) {
  $('set-check').hidden = !c.enrolled;
  $('set-check-next').textContent = !c.enrolled ? '' : (c.due ? 'A check is due now.' : 'Next reminder: ' + when(c.due_unix) + '.');
  let banner = $('check-reminder');
  if (c.enrolled && c.due && !banner) {
    banner = document.createElement('div');
    banner.id = 'check-reminder';
    banner.className = 'card';
    banner.setAttribute('role', 'note');
    const p = document.createElement('p');
    p.append('Time for a password check: do you still know your backup password? ');
    const a = document.createElement('a');
    a.href = '#settings';
    a.textContent = 'Check it now';
    p.append(a);
    banner.append(p);
    $('h-backup').after(banner);
  } else if (banner && !(c.enrolled && c.due)) {
    banner.remove();
  }
}

async function checkPassword(ev) {
  ev.preventDefault();
  await busy(ev.submitter, async () => {
    clearMessage();
    try {
      const r = await api('/api/settings/password-check', { password: $('set-check-password').value });
      $('set-check-password').value = '';
      // The reminder goes before the answer is said: what the page shows then is settled.
      await loadDeviceSettings();
      say('That is your password.', 'The next reminder is on ' + when(r.due_unix) + '.', true);
    } catch (e) { fail(e); }
  });
}

// "I forgot it" leads to change password (unlocking with another key comes first).
function forgotPassword() {
  $('set-check-password').value = '';
  say('Set a new password below.', 'Your other keys (a passkey or your 64-digit key) unlock the backup meanwhile. Once changed, the old password no longer works.', true);
  $('set-password-new').focus();
}

async function saveDeviceSettings(ev) {
  ev.preventDefault();
  await busy(ev.submitter, async () => {
    clearMessage();
    try {
      const d = await api('/api/settings/device', {
        schedule: $('set-auto-every').value, only_on_ac_power: $('set-auto-ac').checked, include_videos: $('set-videos').checked,
      });
      deviceFormsEdited = false;
      showDeviceSettings(d);
      say('Settings saved.', d.saved_to ? 'They are kept in ' + d.saved_to + '.' : '', true);
    } catch (e) { fail(e); }
  });
}

// After a restore: which files the backup left out (videos), for app.js's restore status.
function leftOutText(leftOut) {
  if (!leftOut || !leftOut.length) return '';
  const shown = leftOut.slice(0, 5).join(', ') + (leftOut.length > 5 ? ' and ' + (leftOut.length - 5) + ' more' : '');
  return ' ' + leftOut.length + ' video(s) were left out of this backup by your settings and were not restored: ' + shown + '.';
}

// ---------- change password ----------
async function changePassword(ev) {
  ev.preventDefault();
  const pw = $('set-password-new').value;
  if (pw !== $('set-password-repeat').value) {
    say('The passwords differ.', 'Type the same new password twice. Nothing was changed.', false);
    return;
  }
  await busy(ev.submitter, async () => {
    clearMessage();
    try {
      const r = await api('/api/settings/password/change', { password: pw, rotate: $('set-password-rotate').checked });
      $('set-password-new').value = ''; $('set-password-repeat').value = '';
      say('Password changed. Your old password no longer opens this backup.',
        r.rotated ? 'The backup key was replaced too. The key vault allows 10 wrong tries of the new password.' : 'The key vault allows 10 wrong tries of the new password.', true);
      await refresh();
    } catch (e) { fail(e); }
  });
}

// ---------- key names ----------
let keyNamesShown = '';

// One form per key. Rebuilt only when the keys or their names change, so typing survives a
// refresh.
function renderKeyNames() {
  const shown = JSON.stringify(status.keys.map((k) => [k.id, k.name]));
  if (shown === keyNamesShown) return;
  keyNamesShown = shown;
  const box = $('set-names');
  box.textContent = '';
  status.keys.forEach((k, i) => {
    const form = document.createElement('form');
    form.className = 'key-name';
    const label = document.createElement('label');
    label.htmlFor = 'set-name-' + i;
    label.textContent = (KIND[k.type] || k.type) + ', added ' + when(k.created_unix);
    const input = document.createElement('input');
    input.id = 'set-name-' + i;
    input.value = k.name;
    input.maxLength = 256;
    input.required = true;
    input.autocomplete = 'off';
    const save = document.createElement('button');
    save.type = 'submit';
    save.textContent = 'Save name';
    save.setAttribute('aria-label', 'Save the name of ' + label.textContent);
    form.append(label, input, save);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(save, async () => {
        clearMessage();
        try {
          const r = await api('/api/settings/keys/rename', { id: k.id, name: input.value });
          say('Key renamed to "' + r.name + '".', '', true);
          await refresh();
        } catch (e) { fail(e); }
      });
    });
    box.appendChild(form);
  });
}

// ---------- turn off ----------
const TURN_OFF_PHRASE = 'delete my backups';

// Turning off, and finishing a turn-off that stopped halfway: the typed phrase first, the
// same words when done; the message belongs to `leadsTo`, the screen the person is taken to.
async function deleteBackups(ev, field, route, asked, leadsTo = currentView()) {
  ev.preventDefault();
  const typed = $(field).value;
  if (typed.trim().toLowerCase() !== TURN_OFF_PHRASE) {
    say('Type "' + TURN_OFF_PHRASE + '" to ' + asked + '.', 'Nothing was deleted.', false);
    return;
  }
  await busy(ev.submitter, async () => {
    clearMessage();
    try {
      const r = await api(route, { confirm: typed });
      $(field).value = '';
      say('End-to-end encrypted backup is off. ' + r.snapshots_deleted + ' snapshot(s) were deleted from your cloud drive.',
        'Copies your cloud drive keeps in its trash stay encrypted; empty the trash to remove them too. You can turn backup on again at any time.', true, leadsTo);
      await refresh();
      go(leadsTo);
    } catch (e) { fail(e); }
  });
}

const turnOff = (ev) => deleteBackups(ev, 'set-off-confirm', '/api/settings/turn-off', 'turn off', 'encryption');

// A turn-off that stopped after the keys went (no key opens the rest): offered on the Chat
// backup screen, where a person lands, until it is finished.
function renderUnfinishedTurnOff() {
  $('turn-off-unfinished').hidden = !status.half_off;
  $('unfinished-repo').textContent = status.repo;
  if (status.half_off) $('backup-off').hidden = true;
}
renderHooks.push(renderUnfinishedTurnOff);

const finishTurnOff = (ev) => deleteBackups(ev, 'unfinished-confirm', '/api/settings/turn-off/finish', 'finish turning off');

function wireSettings() {
  $('unfinished-form').addEventListener('submit', finishTurnOff);
  $('set-password-form').addEventListener('submit', changePassword);
  $('set-off-form').addEventListener('submit', turnOff);
  $('set-auto-form').addEventListener('submit', saveDeviceSettings);
  $('set-videos-form').addEventListener('submit', saveDeviceSettings);
  for (const form of ['set-auto-form', 'set-videos-form']) {
    $(form).addEventListener('change', () => { deviceFormsEdited = true; });
  }
  $('set-check-form').addEventListener('submit', checkPassword);
  $('set-check-forgot').addEventListener('click', forgotPassword);
}

document.addEventListener('DOMContentLoaded', wireSettings);
