// More of the Settings area in Chromium (issue 17, item 1): key names, videos left out, the
// password check reminder on the scheduler's test clock, and finishing a turn-off that stopped
// halfway.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { requireTools, tempDir, run, startUi, startVault, launch, shot, message, listFiles, browserHooks } from './harness.mjs';

let browser;
const servers = [];

before(async () => {
  requireTools();
  browser = await launch();
});

browserHooks(() => browser, servers);

async function device(name, opts) {
  const ui = await startUi({ home: tempDir(`home-${name}`), ...opts });
  servers.push(ui);
  return ui;
}

/// A drive turned on with a 64-digit key (by the CLI); returns its paths.
function drive(name, backupOf) {
  const dir = tempDir(name);
  const repo = join(dir, 'drive');
  const keyFile = join(dir, 'recovery.txt');
  run(['--repo', repo, '--recovery-key-file', keyFile, 'init']);
  if (backupOf) run(['--repo', repo, '--recovery-key-file', keyFile, 'backup', backupOf]);
  return { repo, keyFile };
}

async function unlockSettings(page, keyFile) {
  const settings = page.locator('#view-settings');
  await settings.getByText('Use your 64-digit key').click();
  await settings.locator('#settings-locked .unlock-recovery').fill(readFileSync(keyFile, 'utf8'));
  await settings.getByRole('button', { name: 'Unlock with 64-digit key' }).click();
  await message(page, 'ok');
  return settings;
}

test('rename a key: the new name is on the Keys screen and in the CLI, and an empty name is refused', async () => {
  const { page } = browser;
  const { repo, keyFile } = drive('drive-rename');
  const ui = await device('rename', { repo });
  await page.goto(ui.url + '#settings');
  const settings = await unlockSettings(page, keyFile);
  const names = settings.locator('#set-names');
  const field = names.getByRole('textbox').first();
  await field.fill('   ');
  await names.getByRole('button', { name: /Save the name of 64-digit key/ }).click();
  // Blank to a person but not to the browser's `required`: the server refuses it.
  assert.match(await message(page, 'invalid'), /name/);
  await field.fill('Key in the desk drawer');
  await names.getByRole('button', { name: /Save the name of 64-digit key/ }).click();
  assert.match(await message(page, 'ok'), /Key renamed to "Key in the desk drawer"/);
  await page.goto(ui.url.split('?')[0] + '#keys');
  await page.locator('#view-keys').getByText('Key in the desk drawer').waitFor();
  const listed = JSON.parse(run(['--repo', repo, '--json', 'key', 'list'])).keys;
  assert.deepEqual(listed.map((k) => k.name), ['Key in the desk drawer']);
});

test('videos left out: the backup skips them, and a restore says which it could not bring back', async () => {
  const { page } = browser;
  const chats = tempDir('chats-videos');
  writeFileSync(join(chats, 'messages.txt'), 'hello');
  writeFileSync(join(chats, 'holiday.mp4'), Buffer.alloc(4096, 7));
  const { repo, keyFile } = drive('drive-videos');
  const ui = await device('videos', { repo, paths: [chats] });
  await page.goto(ui.url + '#settings');
  const settings = await unlockSettings(page, keyFile);
  const videos = settings.getByLabel('Include videos in backups');
  await page.waitForFunction(() => document.getElementById('view-settings').dataset.scheduler !== undefined);
  assert.equal(await videos.isChecked(), true, 'videos are included unless the person says otherwise');
  await videos.uncheck();
  await settings.locator('#set-videos-form').getByRole('button', { name: 'Save' }).click();
  assert.match(await message(page, 'ok'), /Settings saved/);
  assert.equal(await videos.isChecked(), false, 'the saved setting is shown');
  assert.equal(await page.evaluate(async () => (await api('/api/settings')).include_videos), false, 'saved as left out');

  await page.getByRole('link', { name: 'Chat backup' }).click();
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.locator('#backup-status').getByText(/Backup complete/).waitFor({ timeout: 60000 });

  const target = join(tempDir('restored-videos'), 'out');
  await page.getByRole('link', { name: 'Restore' }).click();
  await page.getByLabel('Restore into this folder (new or empty)').fill(target);
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  const done = page.locator('#restore-status');
  await done.getByText(/Restore complete/).waitFor({ timeout: 60000 });
  assert.match(await done.innerText(), /1 video\(s\) were left out of this backup by your settings and were not restored: .*holiday\.mp4/);
  const restored = listFiles(target).map((p) => p.slice(p.lastIndexOf('/') + 1));
  assert.ok(restored.includes('messages.txt'), restored.join(', '));
  assert.ok(!restored.includes('holiday.mp4'), 'the video was not backed up');
  await shot(page, 'settings-04-videos-left-out');
});

test('password check: due 30 days after the password was set (test clock), a right answer moves it on, "I forgot it" leads to change password', async () => {
  const { page } = browser;
  const vault = await startVault(tempDir('vault-check'));
  servers.push(vault);
  const repo = join(tempDir('drive-check'), 'drive');
  const ui = await device('check', { repo, account: 'fay@example', vaultUrl: vault.url, testMode: true });
  await page.goto(ui.url + '#encryption');
  await page.getByRole('button', { name: 'Use a password' }).click();
  const form = page.locator('#view-password');
  await form.getByLabel('New password').fill('correct horse');
  await form.getByLabel('Repeat the password').fill('correct horse');
  await form.getByRole('button', { name: 'Use this password' }).click();
  await message(page, 'ok');

  await page.getByRole('link', { name: 'Settings' }).click();
  const settings = page.locator('#view-settings');
  await settings.getByRole('heading', { name: 'Password check' }).waitFor();
  assert.match(await settings.locator('#set-check-next').innerText(), /Next reminder: /);
  assert.equal(await page.locator('#check-reminder').count(), 0, 'no reminder right after setting it');

  // 31 days later on the scheduler's clock, the Chat backup screen reminds the person.
  const now = await page.evaluate(() => Date.now());
  await page.evaluate((ms) => api('/api/test/clock', { now_unix_ms: ms }), now + 31 * 86400e3);
  await page.getByRole('link', { name: 'Chat backup' }).click();
  await page.reload();
  const reminder = page.locator('#check-reminder');
  await reminder.getByText(/Time for a password check/).waitFor();
  await shot(page, 'settings-05-password-check-due');

  await reminder.getByRole('link', { name: 'Check it now' }).click();
  await settings.getByLabel('Your backup password').fill('wrong horse');
  await settings.getByRole('button', { name: 'Check my password' }).click();
  assert.match(await message(page, 'check_mismatch'), /not the password you set.*did not use one of your 10 tries/s);
  await settings.getByLabel('Your backup password').fill('correct horse');
  await settings.getByRole('button', { name: 'Check my password' }).click();
  assert.match(await message(page, 'ok'), /That is your password/);
  await page.getByRole('link', { name: 'Chat backup' }).click();
  assert.equal(await page.locator('#check-reminder').count(), 0, 'the reminder is gone after a right answer');

  await page.getByRole('link', { name: 'Settings' }).click();
  await settings.getByRole('button', { name: 'I forgot it' }).click();
  assert.match(await message(page, 'ok'), /Set a new password below/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'set-password-new');
});

test('a turn-off that stopped halfway is offered to be finished, with the typed phrase, and leaves nothing', async () => {
  const { page } = browser;
  const chats = tempDir('chats-half');
  writeFileSync(join(chats, 'messages.txt'), 'hello');
  const { repo } = drive('drive-half', chats);
  // Stopped right after the keys file went (the first thing a turn-off deletes).
  rmSync(join(repo, 'keys'));
  const stored = listFiles(repo).length;
  assert.ok(stored > 2);
  const ui = await device('half', { repo, paths: [chats] });
  await page.goto(ui.url + '#backup');
  const card = page.locator('#turn-off-unfinished');
  await card.getByRole('heading', { name: 'Turning off did not finish' }).waitFor();
  assert.equal(await page.locator('#backup-off').isVisible(), false);

  await card.getByLabel('To confirm, type').fill('no');
  await card.getByRole('button', { name: 'Finish turning off' }).click();
  assert.match(await message(page, 'error'), /Type "delete my backups"/);
  assert.equal(listFiles(repo).length, stored, 'nothing deleted on a wrong phrase');

  await card.getByLabel('To confirm, type').fill('delete my backups');
  await card.getByRole('button', { name: 'Finish turning off' }).click();
  assert.match(await message(page, 'ok'), /End-to-end encrypted backup is off\. 1 snapshot\(s\) were deleted/);
  assert.deepEqual(listFiles(repo), [], 'nothing is left on the drive');
  await card.waitFor({ state: 'hidden' });
  await page.getByRole('link', { name: 'Turn on end-to-end encrypted backup' }).waitFor();
  assert.ok(existsSync(chats) && listFiles(chats).length === 1, 'the chats on this device are not touched');
});
