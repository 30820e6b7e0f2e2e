// The Settings area of `sealback ui` in Chromium (issue 17, item 1): change password at a real
// key vault, turn off end-to-end encrypted backup, a scheduled backup firing on a test clock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { requireTools, tempDir, run, startUi, startVault, launch, shot, message, listFiles, browserHooks } from './harness.mjs';

let browser;
const work = tempDir('settings');
const chats = join(work, 'chats');
const servers = [];

before(async () => {
  requireTools();
  run(['corpus', 'generate', chats, '--seed', '11']);
  browser = await launch();
});

browserHooks(() => browser, servers);

async function device(name, opts) {
  const ui = await startUi({ home: tempDir(`home-${name}`), ...opts });
  servers.push(ui);
  return ui;
}

async function turnOnWithPassword(page, password) {
  await page.getByRole('button', { name: 'Use a password' }).click();
  const form = page.locator('#view-password');
  await form.getByLabel('New password').fill(password);
  await form.getByLabel('Repeat the password').fill(password);
  await form.getByRole('button', { name: 'Use this password' }).click();
  assert.match(await message(page, 'ok'), /It unlocks with your password/);
}

async function unlockWithPassword(page, box, password) {
  if (!(await box.locator('details.unlock-password-box').evaluate((d) => d.open))) await box.getByText('Use your password').click();
  await box.getByLabel('Password').fill(password);
  await box.getByRole('button', { name: 'Unlock with password' }).click();
}

test('change password: the old one stops working with a fresh count, no dead key is left, and a second password is refused', async () => {
  const { page } = browser;
  const vault = await startVault(tempDir('vault'));
  servers.push(vault);
  const drive = join(tempDir('drive'), 'drive');
  const ui = await device('pw', { repo: drive, paths: [chats], account: 'erin@example', vaultUrl: vault.url });
  await page.goto(ui.url + '#encryption');
  await turnOnWithPassword(page, 'first password');
  const before = JSON.parse(run(['--repo', drive, '--json', 'key', 'list'])).keys;

  // Adding a second password is refused (it used to replace the first one's vault record).
  await page.goto(ui.url.split('?')[0] + '#keys');
  await page.getByRole('button', { name: 'Add a password' }).click();
  const form = page.locator('#view-password');
  await form.getByLabel('New password').fill('second password');
  await form.getByLabel('Repeat the password').fill('second password');
  await form.getByRole('button', { name: 'Use this password' }).click();
  assert.match(await message(page, 'invalid'), /change it instead/);

  await page.getByRole('link', { name: 'Settings' }).click();
  const settings = page.locator('#view-settings');
  await settings.getByRole('heading', { name: 'Password', exact: true }).waitFor();
  await settings.getByLabel('Password to change to').fill('second password');
  await settings.getByLabel('Type that password again').fill('second password');
  await settings.getByRole('button', { name: 'Change password' }).click();
  assert.match(await message(page, 'ok'), /Password changed/);
  await shot(page, 'settings-01-password-changed');
  const after = JSON.parse(run(['--repo', drive, '--json', 'key', 'list'])).keys;
  assert.equal(after.filter((k) => k.type === 'vault-password').length, 1, 'one password key, no dead row');
  assert.notEqual(after[0].id, before[0].id, 'a new slot took the old one\'s place');

  await page.goto(ui.url.split('?')[0] + '#backup');
  await page.getByRole('button', { name: 'Lock this session' }).click();
  await page.getByRole('heading', { name: 'Backup is locked' }).waitFor();
  const box = page.locator('#backup-locked');
  await unlockWithPassword(page, box, 'first password');
  assert.match(await message(page, 'wrong_password'), /9 attempts remain/, 'the old password is refused by a fresh record');
  await unlockWithPassword(page, box, 'second password');
  await page.getByRole('button', { name: 'Back up now' }).waitFor();
});

test('turn off: says the backups on the drive are deleted, asks for the typed phrase, then deletes them', async () => {
  const { page } = browser;
  const dir = tempDir('drive-off');
  const drive = join(dir, 'drive');
  const keyFile = join(dir, 'recovery.txt');
  run(['--repo', drive, '--recovery-key-file', keyFile, 'init']);
  run(['--repo', drive, '--recovery-key-file', keyFile, 'backup', chats]);
  const stored = listFiles(drive).length;
  const ui = await device('off', { repo: drive, paths: [chats] });
  await page.goto(ui.url + '#settings');
  const settings = page.locator('#view-settings');
  await settings.getByText('Unlock to change these settings.').waitFor();
  await settings.getByText('Use your 64-digit key').click();
  await settings.locator('#settings-locked .unlock-recovery').fill(readFileSync(keyFile, 'utf8'));
  await settings.getByRole('button', { name: 'Unlock with 64-digit key' }).click();
  await message(page, 'ok');
  await settings.getByRole('heading', { name: 'Turn off end-to-end encrypted backup' }).waitFor();
  assert.match(await settings.locator('#set-off-form').locator('..').innerText(), /deletes every backup/);

  // A wrong phrase deletes nothing (checked in the page and by the server).
  await settings.getByLabel('To confirm, type').fill('yes');
  await settings.getByRole('button', { name: 'Turn off and delete backups' }).click();
  assert.match(await message(page, 'error'), /Type "delete my backups"/);
  assert.equal(listFiles(drive).length, stored);

  await settings.getByLabel('To confirm, type').fill('delete my backups');
  await settings.getByRole('button', { name: 'Turn off and delete backups' }).click();
  assert.match(await message(page, 'ok'), /End-to-end encrypted backup is off\. 1 snapshot\(s\) were deleted/);
  await page.getByRole('heading', { name: 'End-to-end encrypted backup' }).waitFor();
  await page.getByRole('button', { name: 'Turn on with a passkey' }).waitFor();
  await shot(page, 'settings-02-turned-off');
  assert.deepEqual(listFiles(drive), [], 'nothing is left on the drive');
});

/// The snapshots in `drive`, read with the CLI (waits until there are `count`).
async function snapshotsWhen(drive, keyFile, count) {
  for (let i = 0; i < 300; i++) {
    const list = JSON.parse(run(['--repo', drive, '--recovery-key-file', keyFile, '--json', 'snapshots']));
    if (list.length >= count) return list;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${count} snapshots after 30 s`);
}

test('automatic backups: daily fires at once for a device that never backed up, then again when the test clock passes the next due time', async () => {
  const { page } = browser;
  const dir = tempDir('drive-sched');
  const drive = join(dir, 'drive');
  const keyFile = join(dir, 'recovery.txt');
  run(['--repo', drive, '--recovery-key-file', keyFile, 'init']);
  const ui = await device('sched', { repo: drive, paths: [chats], testMode: true });
  await page.goto(ui.url + '#settings');
  const settings = page.locator('#view-settings');
  await settings.getByText('Use your 64-digit key').click();
  await settings.locator('#settings-locked .unlock-recovery').fill(readFileSync(keyFile, 'utf8'));
  await settings.getByRole('button', { name: 'Unlock with 64-digit key' }).click();
  await message(page, 'ok');

  await settings.getByLabel('Back up automatically').selectOption('daily');
  await settings.locator('#set-auto-form').getByRole('button', { name: 'Save' }).click();
  assert.match(await message(page, 'ok'), /Settings saved/);
  const [first] = await snapshotsWhen(drive, keyFile, 1);
  assert.deepEqual(first.tags, ['scheduled']);

  // The page shows the last backup and the next one, a day later on the scheduler's clock.
  await page.reload();
  await page.waitForFunction(() => document.getElementById('view-settings').dataset.scheduler === 'waiting');
  const last = await settings.locator('#set-auto-last').innerText();
  assert.equal(last, new Date(first.time_unix_ns / 1e6).toLocaleString());
  const next = await settings.locator('#set-auto-next').innerText();
  assert.equal(next, new Date(first.time_unix_ns / 1e6 + 86400e3).toLocaleString());
  await shot(page, 'settings-03-automatic-backups');

  // One minute before it is due nothing happens; past it, the scheduler backs up. (Times in
  // milliseconds: nanoseconds since 1970 are beyond a JavaScript number's exact range.)
  const dueMs = Math.ceil(first.time_unix_ns / 1e6) + 86400e3;
  await page.evaluate((ms) => api('/api/test/clock', { now_unix_ms: ms }), dueMs - 60e3);
  await page.evaluate((ms) => api('/api/test/clock', { now_unix_ms: ms }), dueMs + 1e3);
  const list = await snapshotsWhen(drive, keyFile, 2);
  assert.equal(list.length, 2);
  assert.equal(Math.round(list[1].time_unix_ns / 1e6), dueMs + 1e3, 'it ran at the test clock\'s time, not a minute early');
  assert.deepEqual(list[1].tags, ['scheduled']);
});

test('the test clock does not exist unless the UI runs in test mode', async () => {
  const { page } = browser;
  const dir = tempDir('drive-noclock');
  const ui = await device('noclock', { repo: join(dir, 'drive'), paths: [chats] });
  await page.goto(ui.url + '#settings');
  const status = await page.evaluate(() => fetch('/api/test/clock', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Sealback-Token': token }, body: '{"now_unix_ms": 1}',
  }).then((r) => r.status));
  assert.equal(status, 404);
});
