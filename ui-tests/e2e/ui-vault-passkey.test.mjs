// `sealback ui` with a key vault, in Chromium with an authenticator without PRF: the page
// explains that the passkey cannot protect the backup by itself and offers the key vault's
// passkey mode; backup turns on with it, and a new device restores with the same (synced)
// passkey through the vault. The rollout answer (GET /api/features) decides which choices the
// page offers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { requireTools, tempDir, run, startUi, startVault, launch, addAuthenticator, removeAuthenticator, shot, message, sealback, sessionStatus, browserHooks } from './harness.mjs';

let browser;
let vault;
const work = tempDir('vault-ui');
const chats = join(work, 'chats');
const drive = join(work, 'drive');
const rollout = join(work, 'rollout.toml');
const uis = [];

before(async () => {
  requireTools();
  run(['corpus', 'generate', chats, '--seed', '11', '--size', '5M']);
  // Password keys are not offered yet; passkeys (both modes) are.
  writeFileSync(rollout, '[[rule]]\nprotector = "password"\npercent = 0\n');
  vault = await startVault(tempDir('vault'), { args: ['--rp-origin', 'http://localhost', '--rollout', rollout] });
  browser = await launch();
});

browserHooks(() => browser, uis);
after(async () => { if (vault) await vault.stop(); });

async function device(name, opts) {
  const ui = await startUi({ home: tempDir(`home-${name}`), account: 'yara', vaultUrl: vault.url, ...opts });
  uis.push(ui);
  return ui;
}

test('without PRF the page offers the key vault passkey mode, and a new device restores through it', async () => {
  const { page, cdp } = browser;
  const authenticator = await addAuthenticator(cdp, { prf: false });
  try {
    await vaultPasskeyStory(page);
  } finally {
    await removeAuthenticator(cdp, authenticator);
  }
});

/// Follows the page's hand-off to its shared localhost address (same screen, same session).
async function continueAtLocalhost(page) {
  const from = new URL(page.url());
  await page.getByRole('button', { name: 'Continue at the other address' }).click();
  await page.waitForURL((u) => u.hostname === 'localhost' && u.port === from.port && !u.search.includes('code='));
  await page.locator('#shared-origin').waitFor();
  assert.equal(new URL(page.url()).hash, from.hash, 'the same screen');
}

async function vaultPasskeyStory(page) {
  const phone = await device('a', { repo: drive, paths: [chats] });
  await page.goto(phone.url + '#encryption');
  await page.getByRole('button', { name: 'Turn on with a passkey' }).waitFor();
  // The rollout: no password keys for this account yet, said plainly.
  await page.locator('#view-encryption').getByText(/Not available yet:/).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Use a password' }).isDisabled(), true);

  await page.getByRole('button', { name: 'Turn on with a passkey' }).click();
  const explained = await message(page, 'no_prf');
  assert.match(explained, /cannot lock your backup key to a passkey/);
  assert.match(explained, /key vault's passkey mode/);
  await page.getByText(/keeps half of your backup key sealed/).waitFor();
  await shot(page, '20-no-prf-vault-offer');
  await page.getByRole('button', { name: "Use the key vault's passkey mode" }).click();
  // A development vault's passkeys belong to the RP localhost, which the page's own address
  // (sb-LABEL.localhost) cannot use: the page hands the tab over to http://localhost:PORT.
  assert.match(await message(page, 'other_address'), /only at the address localhost/);
  await continueAtLocalhost(page);
  await page.getByRole('button', { name: "Use the key vault's passkey mode here" }).click();
  const on = await message(page, 'ok');
  assert.match(on, /It unlocks with your passkey through the key vault/);
  // The 64-digit key offered in the same step can be declined, with the risk said plainly.
  await page.getByRole('button', { name: /^Not now/ }).click();
  assert.match(await message(page, 'ok'), /passkey only/);

  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.getByText(/Backup complete: \d+ files/).waitFor({ timeout: 120000 });
  const status = await sessionStatus(page);
  assert.deepEqual(status.keys.map((k) => k.type), ['vault-passkey']);
  await phone.stop();

  // A new device: fresh HOME, the same drive, the same synced passkey, the vault.
  const laptop = await device('b', { repo: drive });
  await page.goto(laptop.url + '#restore');
  await page.getByRole('heading', { name: 'Restore', level: 1 }).waitFor();
  const restored = join(tempDir('restored'), 'chats-restored');
  await page.getByLabel('Restore into this folder (new or empty)').fill(restored);
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  assert.match(await message(page, 'other_address'), /only at the address localhost/);
  await continueAtLocalhost(page);
  await page.getByLabel('Restore into this folder (new or empty)').fill(restored);
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  await page.getByText(/Restore complete: \d+ files/).waitFor({ timeout: 120000 });
  await shot(page, '21-restored-through-vault');
  const compare = execFileSync(sealback, ['--json', 'corpus', 'compare', chats, join(restored, 'chats')], { encoding: 'utf8' });
  assert.equal(JSON.parse(compare).identical, true, compare);
}
