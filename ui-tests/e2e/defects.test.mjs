// The paths that hurt (issue #17): one test per defect a person met on the local page, each
// written against the page as it was (and failing there) before the fix. Real `sealback ui`
// processes, a real key vault where one is needed, Chromium with a CDP virtual authenticator.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, mkdirSync, appendFileSync } from 'node:fs';
import {
  requireTools, tempDir, startUi, startVault, freePort, launch, addAuthenticator, removeAuthenticator,
  message, shot, browserHooks,
} from './harness.mjs';

let browser;
const uis = [];
const work = tempDir('defects');
const chats = join(work, 'chats');

before(async () => {
  requireTools();
  // A small chat store: a backup of it takes a moment.
  mkdirSync(chats, { recursive: true });
  writeFileSync(join(chats, 'messages.db'), 'x'.repeat(200_000));
  writeFileSync(join(chats, 'photo.jpg'), 'y'.repeat(50_000));
  browser = await launch();
});

browserHooks(() => browser, uis);

async function device(name, opts = {}) {
  const ui = await startUi({ home: tempDir(`home-${name}`), repo: join(tempDir(`drive-${name}`), 'drive'), ...opts });
  uis.push(ui);
  return ui;
}

async function vaultServer(args = []) {
  const vault = await startVault(tempDir('vault'), { args });
  uis.push(vault);
  return vault;
}

async function open(page, ui, hash = '') {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(ui.url + hash);
  await page.waitForFunction(() => document.body.dataset.ready === '1');
}

/// Shows a new 64-digit key (already on the recovery screen) and confirms it; returns it.
async function saveShownKey(page) {
  await page.waitForFunction(() => document.getElementById('recovery-key').textContent.length > 0);
  const key = (await page.getByLabel('The new 64-digit key').innerText()).trim();
  await page.getByRole('button', { name: 'I saved my key' }).click();
  await page.getByLabel('Enter your 64-digit key').fill(key);
  await page.getByRole('button', { name: 'Confirm' }).click();
  return key;
}

/// Turns backup on with a 64-digit key from the encryption screen; returns the key.
async function turnOnWithRecoveryKey(page) {
  await page.getByRole('button', { name: 'Use a 64-digit key', exact: true }).click();
  const key = await saveShownKey(page);
  assert.match(await message(page, 'ok'), /It unlocks with your 64-digit key/);
  return key;
}

/// Reads a background colour's relative luminance contrast (WCAG) against white.
function contrastWithWhite(rgb) {
  const [r, g, b] = rgb.match(/\d+/g).slice(0, 3).map(Number).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return 1.05 / (l + 0.05);
}

test('add-key buttons stay hidden while backup is off or locked', async () => {
  const { page } = browser;
  const ui = await device('hidden');
  await open(page, ui, '#keys');
  assert.equal(await page.getByRole('button', { name: 'Add a 64-digit key' }).isVisible(), false, 'off: no add-key buttons');
  await page.goto(ui.url.replace(/\?.*/, '') + '#encryption');
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  await turnOnWithRecoveryKey(page);
  await page.getByRole('button', { name: 'Lock this session' }).click();
  await page.getByRole('heading', { name: 'Backup is locked' }).waitFor();
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByText('Unlock to add or remove keys.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Add a 64-digit key' }).isVisible(), false, 'locked: no add-key buttons');
});

test('a message from one screen does not stay above another', async () => {
  const { page } = browser;
  const ui = await device('tabs');
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  assert.equal(await page.locator('#message').isVisible(), true, 'the result is shown where the person lands');
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByRole('heading', { name: 'Keys', level: 1 }).waitFor();
  assert.equal(await page.locator('#message').isVisible(), false, 'the Chat backup message is gone on Keys');
});

test('a restore folder that is refused says why and does not stay at "Starting…"', async () => {
  const { page } = browser;
  const ui = await device('restore');
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  await page.getByRole('link', { name: 'Restore' }).click();
  await page.getByLabel('Restore into this folder (new or empty)').fill('relative/folder');
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  assert.match(await message(page, 'invalid'), /full path/);
  const status = await page.locator('#restore-status');
  assert.ok(!(await status.isVisible()) || !/Starting/.test(await status.innerText()), `status: ${await status.innerText()}`);
});

test('a page without a session, or with an old one, says what to do in a sentence', async () => {
  const { page } = browser;
  const ui = await device('token');
  const bare = new URL(ui.url).origin + '/';
  const tab = await page.context().newPage();
  try {
    for (const token of [null, 'a-session-from-an-earlier-start']) {
      if (token) await tab.evaluate((t) => sessionStorage.setItem('sealback-session', t), token);
      await tab.goto(bare);
      const said = await message(tab, 'no_token');
      assert.doesNotMatch(said, /[{}`"]|no_token|X-Sealback/, `plain words: ${said}`);
      assert.match(said, /start it again|open the (new )?address/i, `what to do next: ${said}`);
    }
  } finally {
    await tab.close();
  }
});

test('"Use your 64-digit key" is not offered for a backup that has none', async () => {
  const { page } = browser;
  const vault = await vaultServer();
  const ui = await device('no-recovery', { account: 'bo', vaultUrl: vault.url });
  await open(page, ui, '#encryption');
  await page.getByRole('button', { name: 'Use a password' }).click();
  await page.getByLabel('New password').fill('correct horse battery');
  await page.getByLabel('Repeat the password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Use this password' }).click();
  assert.match(await message(page, 'ok'), /It unlocks with your password/);
  await page.getByRole('button', { name: 'Lock this session' }).click();
  const box = page.locator('#backup-locked');
  await box.getByRole('heading', { name: 'Backup is locked' }).waitFor();
  assert.equal(await box.getByText('Use your password').isVisible(), true);
  assert.equal(await box.getByText('Use your 64-digit key').isVisible(), false, 'no 64-digit key to use');
  assert.equal(await box.getByRole('button', { name: 'Unlock with passkey' }).isVisible(), false, 'no passkey to use');
});

test('a passkey-only setup offers a 64-digit key in the same step and says what losing every passkey means', async () => {
  const { page, cdp } = browser;
  const authenticator = await addAuthenticator(cdp, { prf: true });
  try {
    const ui = await device('passkey-only');
    await open(page, ui, '#encryption');
    await page.getByRole('button', { name: 'Turn on with a passkey' }).click();
    await page.getByRole('heading', { name: 'Your 64-digit key', level: 1 }).waitFor();
    assert.match(await page.locator('#recovery-why').innerText(), /lose every passkey.*lose your backups/is);
    await shot(page, 'defect-passkey-then-key');
    await saveShownKey(page);
    assert.match(await message(page, 'ok'), /passkey and your 64-digit key/);
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#keys-body tr').length === 2);
    const kinds = await page.locator('#keys-body tr td:first-child').allInnerTexts();
    assert.deepEqual(kinds.map((k) => k.replace(/^Key\s*/, '')).sort(), ['64-digit key', 'Passkey']);
  } finally {
    await removeAuthenticator(cdp, authenticator);
  }
});

test('one wrong digit while confirming a 64-digit key lets the person try again', async () => {
  const { page } = browser;
  const ui = await device('typo');
  await open(page, ui, '#encryption');
  await page.getByRole('button', { name: 'Use a 64-digit key', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('recovery-key').textContent.length > 0);
  const key = (await page.getByLabel('The new 64-digit key').innerText()).trim();
  await page.getByRole('button', { name: 'I saved my key' }).click();
  const typo = key.slice(0, -1) + (key.at(-1) === '1' ? '2' : '1');
  await page.getByLabel('Enter your 64-digit key').fill(typo);
  await page.getByRole('button', { name: 'Confirm' }).click();
  assert.match(await message(page, 'confirm_mismatch'), /try again/i);
  assert.equal(await page.getByLabel('Enter your 64-digit key').isVisible(), true, 'still on the confirm step');
  await page.getByLabel('Enter your 64-digit key').fill(key);
  await page.getByRole('button', { name: 'Confirm' }).click();
  assert.match(await message(page, 'ok'), /It unlocks with your 64-digit key/);
});

test('backup progress never says "0 B of 0 B"', async () => {
  const { page } = browser;
  const ui = await device('progress', { paths: [chats] });
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  // The first answer about the job comes before the backup has counted anything.
  let first = true;
  await page.route('**/api/jobs/*', async (route) => {
    if (!first) return route.continue();
    first = false;
    const id = route.request().url().split('/').pop();
    return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ id, kind: 'backup', phase: 'scanning', state: 'running', total_bytes: 0, done_bytes: 0 }) });
  });
  try {
    await page.evaluate(() => {
      window.__said = [];
      const status = document.getElementById('backup-status');
      new MutationObserver(() => window.__said.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backup complete: \d+ files/).waitFor({ timeout: 60000 });
    const said = await page.evaluate(() => window.__said);
    assert.ok(!first, 'the faked first answer was served');
    assert.ok(said.every((s) => !/\b0 B of 0 B\b/.test(s)), `no empty progress: ${JSON.stringify(said)}`);
  } finally {
    await page.unroute('**/api/jobs/*');
  }
});

test('keys are told apart: distinct names and distinct labels on their buttons', async () => {
  const { page } = browser;
  const ui = await device('names');
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByRole('button', { name: 'Add a 64-digit key' }).click();
  await saveShownKey(page);
  assert.match(await message(page, 'ok'), /64-digit key added/);
  await page.waitForFunction(() => document.querySelectorAll('#keys-body tr').length === 2);
  const names = await page.locator('#keys-body tr td:nth-child(2)').allInnerTexts();
  assert.equal(new Set(names).size, 2, `names differ: ${names}`);
  const labels = await page.locator('#keys-body button').evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label')));
  assert.equal(new Set(labels).size, labels.length, `labels differ: ${labels}`);
});

test('on a phone the Keys and Snapshots tables keep their column labels', async () => {
  const { page } = browser;
  const ui = await device('phone-tables', { paths: [chats] });
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.getByText(/Backup complete: \d+ files/).waitFor({ timeout: 60000 });
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [tab, table] of [['Keys', '#view-keys table'], ['Snapshots', '#snapshots-table']]) {
    await page.getByRole('link', { name: tab }).click();
    await page.locator(`${table} tbody tr`).first().waitFor();
    const seen = await page.locator(table).evaluate((t) => {
      const headers = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
      const cells = [...t.querySelector('tbody tr').children];
      return cells.map((td, i) => ({ header: headers[i], label: getComputedStyle(td, '::before').content, shown: td.getBoundingClientRect().width > 0 }));
    });
    for (const c of seen.filter((c) => c.header !== 'Actions')) {
      assert.equal(c.label, JSON.stringify(c.header), `${tab}: the cell under "${c.header}" is labelled: ${JSON.stringify(seen)}`);
    }
  }
  await shot(page, 'defect-phone-snapshots');
});

test('the chart: bars with 3:1 contrast, dates on its axis, newest first like the table', async () => {
  const { page } = browser;
  const ui = await device('chart', { paths: [chats] });
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  for (let i = 0; i < 2; i++) {
    appendFileSync(join(chats, 'messages.db'), 'z'.repeat(30_000 * (i + 1)));
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backup complete: \d+ files/).waitFor({ timeout: 60000 });
  }
  await page.getByRole('link', { name: 'Snapshots' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#snapshots-body tr').length === 2);
  const chart = await page.evaluate(() => ({
    fills: [...document.querySelectorAll('#chart rect')].map((r) => getComputedStyle(r).fill),
    titles: [...document.querySelectorAll('#chart rect title')].map((t) => t.textContent),
    dates: [...document.querySelectorAll('#chart text.date')].map((t) => t.textContent),
    table: [...document.querySelectorAll('#snapshots-body tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
  }));
  for (const fill of chart.fills) {
    assert.ok(contrastWithWhite(fill) >= 3, `bar ${fill} has ${contrastWithWhite(fill).toFixed(2)}:1 against the page`);
  }
  assert.equal(chart.dates.length, 2, `a date under each snapshot: ${JSON.stringify(chart)}`);
  assert.ok(chart.dates.every((d) => d.length > 0));
  const newest = chart.table[0][1];
  assert.ok(chart.titles[0].startsWith(newest), `the first bar is the newest snapshot ${newest}: ${chart.titles}`);
  await shot(page, 'defect-chart');
});

test('the rollout is honoured on Keys too: a kind at 0 % is not offered there', async () => {
  const { page } = browser;
  const rollout = join(tempDir('rollout'), 'rollout.toml');
  writeFileSync(rollout, '[[rule]]\nprotector = "password"\npercent = 0\n');
  const vault = await vaultServer(['--rollout', rollout]);
  const ui = await device('rollout-keys', { account: 'cy', vaultUrl: vault.url });
  await open(page, ui, '#encryption');
  await turnOnWithRecoveryKey(page);
  await page.getByRole('link', { name: 'Keys' }).click();
  const add = page.getByRole('button', { name: 'Add a password' });
  assert.equal(await add.isVisible() && await add.isEnabled(), false, 'no password to add');
  await page.locator('#view-keys').getByText(/Not available yet/).waitFor();
});

test('a key vault that cannot be reached offers nothing, and the page says so', async () => {
  const { page } = browser;
  const closed = `http://127.0.0.1:${await freePort()}`;
  const ui = await device('unreachable', { account: 'di', vaultUrl: closed });
  await open(page, ui, '#encryption');
  const said = await message(page, 'vault_unreachable');
  assert.match(said, /cannot be reached/);
  assert.doesNotMatch(said, /127\.0\.0\.1|http/, `no raw addresses: ${said}`);
  assert.equal(await page.getByRole('button', { name: 'Turn on with a passkey' }).isEnabled(), false);
  assert.equal(await page.getByRole('button', { name: 'Use a password' }).isEnabled(), false);
  assert.equal(await page.getByRole('button', { name: 'Use a 64-digit key', exact: true }).isEnabled(), true, 'the 64-digit key needs no vault');
});

test("the key vault's passkey mode works with a vault started as the README shows", async () => {
  const { page, cdp } = browser;
  const vault = await vaultServer(); // `vault serve ... --dev`, nothing else
  const authenticator = await addAuthenticator(cdp, { prf: false });
  try {
    const ui = await device('vault-passkey-dev', { account: 'ed', vaultUrl: vault.url });
    await open(page, ui, '#encryption');
    await page.getByRole('button', { name: 'Turn on with a passkey' }).click();
    await message(page, 'no_prf');
    await page.getByRole('button', { name: "Use the key vault's passkey mode" }).click();
    // The --dev vault's RP is localhost: the page hands the tab over to http://localhost:PORT.
    assert.match(await message(page, 'other_address'), /only at the address localhost/);
    await page.getByRole('button', { name: 'Continue at the other address' }).click();
    await page.locator('#shared-origin').waitFor();
    await page.getByRole('button', { name: "Use the key vault's passkey mode here" }).click();
    await page.getByRole('heading', { name: 'Your 64-digit key', level: 1 }).waitFor();
    await saveShownKey(page);
    assert.match(await message(page, 'ok'), /passkey and your 64-digit key/);
  } finally {
    await removeAuthenticator(cdp, authenticator);
  }
});

test('a key vault whose passkeys this page cannot use says so plainly and leaves no passkey behind', async () => {
  const { page, cdp } = browser;
  // A vault that accepts only https://localhost: not this page's origin.
  const vault = await vaultServer(['--rp-id', 'localhost', '--rp-origin', 'https://localhost']);
  const authenticator = await addAuthenticator(cdp, { prf: false });
  try {
    const ui = await device('vault-passkey-origin', { account: 'fa', vaultUrl: vault.url });
    await open(page, ui, '#encryption');
    await page.getByRole('button', { name: 'Turn on with a passkey' }).click();
    await message(page, 'no_prf');
    await page.getByRole('button', { name: "Use the key vault's passkey mode" }).click();
    await message(page, 'other_address');
    await page.getByRole('button', { name: 'Continue at the other address' }).click();
    await page.locator('#shared-origin').waitFor();
    await page.getByRole('button', { name: "Use the key vault's passkey mode here" }).click();
    const said = await message(page, 'passkey_refused');
    assert.doesNotMatch(said, /check (the vault address and )?your connection/i, `no wrong hint: ${said}`);
    assert.doesNotMatch(said, /origin|webauthn|\bRP\b/i, `no library words: ${said}`);
    assert.match(said, /64-digit key/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator });
    assert.deepEqual(credentials, [], 'no passkey left in the provider');
  } finally {
    await removeAuthenticator(cdp, authenticator);
  }
});
