// Interop of the key vault's WebAuthn relying party (webauthn-rs) with a WebAuthn client and
// authenticator this project did not write: Chromium and its CDP virtual authenticator, without
// PRF. The vault is the relying party `vault.test` at http://vault.test:PORT (resolved to
// 127.0.0.1, and treated as a secure origin by this browser only); the ceremonies run in a page
// of that origin (served to the browser by the test) and the test relays the JSON to the
// vault's API, as an app would. A look-alike page at http://evil.vault.test:PORT plays the
// phishing site: the browser lets it use the same passkey, the vault must refuse.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools, tempDir, startVault, freePort, launch, addAuthenticator } from './harness.mjs';

let browser;
let vault;
let origin;
let evil;
let vaultDir;

before(async () => {
  requireTools();
  const port = await freePort();
  origin = `http://vault.test:${port}`;
  evil = `http://evil.vault.test:${port}`;
  vaultDir = tempDir('vault-rp');
  vault = await startVault(vaultDir, {
    listen: `127.0.0.1:${port}`, args: ['--rp-id', 'vault.test', '--rp-origin', origin],
  });
  browser = await launch([
    '--host-resolver-rules=MAP vault.test 127.0.0.1, MAP *.vault.test 127.0.0.1',
    `--unsafely-treat-insecure-origin-as-secure=${origin},${evil}`,
  ]);
  // A blank page on the vault's origin and on the look-alike origin.
  for (const host of [origin, evil]) {
    await browser.context.route(`${host}/passkeys.html`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>passkeys</title>' }));
  }
});

after(async () => {
  if (browser) await browser.context.close();
  if (vault) await vault.stop();
});

async function api(path, body) {
  const r = await fetch(`${vault.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

/// Runs navigator.credentials.create/get in the page with the vault's JSON options and
/// returns the credential's JSON (PublicKeyCredential.toJSON), as a web client would post it.
async function ceremony(page, kind, options, { prfSalt } = {}) {
  return page.evaluate(async ({ kind, options, prfSalt }) => {
    const publicKey = kind === 'create'
      ? PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey)
      : PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
    if (prfSalt) publicKey.extensions = { ...(publicKey.extensions || {}), prf: { eval: { first: new Uint8Array(prfSalt) } } };
    const cred = kind === 'create'
      ? await navigator.credentials.create({ publicKey })
      : await navigator.credentials.get({ publicKey });
    return cred.toJSON();
  }, { kind, options, prfSalt });
}

async function openAt(page, base) {
  await page.goto(`${base}/passkeys.html`);
}

test('a passkey without PRF registers, logs in, signs in, and a replayed or cross-origin assertion is refused', async () => {
  const { page, cdp } = browser;
  const authenticator = await addAuthenticator(cdp, { prf: false });
  try {
    await withoutPrf(page);
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: authenticator });
  }
});

async function withoutPrf(page) {
  await openAt(page, origin);

  const reg = await api('/v1/passkey/register/start', { account: 'wendy', proof: 'dev' });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  assert.equal(reg.body.options.publicKey.rp.id, 'vault.test');
  const created = await ceremony(page, 'create', reg.body.options);
  const done = await api('/v1/passkey/register/finish', { session: reg.body.session, credential: created });
  assert.equal(done.status, 200, JSON.stringify(done.body));
  assert.equal(Buffer.from(done.body.vault_share, 'base64url').length, 32);

  // Login: a counted guess, then the same vault share for Chromium's assertion.
  const login = await api('/v1/passkey/login/start', { account: 'wendy' });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.attempts_remaining, 9);
  const asserted = await ceremony(page, 'get', login.body.options);
  const ok = await api('/v1/passkey/login/finish', { session: login.body.session, credential: asserted });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.vault_share, done.body.vault_share);
  assert.match(ok.body.session_token, /^sbs1\.[0-9a-f]{64}$/);

  // Sign-in without an account: the discoverable passkey names it.
  const signin = await api('/v1/passkey/signin/start', {});
  assert.equal(signin.status, 200);
  assert.equal((signin.body.options.publicKey.allowCredentials || []).length, 0);
  const discovered = await ceremony(page, 'get', signin.body.options);
  const who = await api('/v1/passkey/signin/finish', { session: signin.body.session, credential: discovered });
  assert.equal(who.status, 200, JSON.stringify(who.body));
  assert.equal(who.body.account, 'wendy');

  // The earlier assertion replayed against a new challenge is refused (and counted).
  const again = await api('/v1/passkey/login/start', { account: 'wendy' });
  const replay = await api('/v1/passkey/login/finish', { session: again.body.session, credential: asserted });
  assert.equal(replay.status, 401, JSON.stringify(replay.body));
  assert.equal(replay.body.error, 'login_failed');
  assert.equal(replay.body.attempts_remaining, 9);

  // A look-alike page gets the same passkey to sign the vault's challenge, but its origin is
  // in the signed client data: refused.
  await openAt(page, evil);
  const third = await api('/v1/passkey/login/start', { account: 'wendy' });
  const phished = await ceremony(page, 'get', third.body.options);
  assert.equal(JSON.parse(Buffer.from(phished.response.clientDataJSON, 'base64url')).origin, evil);
  const crossed = await api('/v1/passkey/login/finish', { session: third.body.session, credential: phished });
  assert.equal(crossed.status, 401, JSON.stringify(crossed.body));
  assert.equal(crossed.body.attempts_remaining, 8);
}

test('a change of a passkey\'s backup state is noticed and logged without the account', async () => {
  const { page, cdp } = browser;
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      defaultBackupEligibility: true, defaultBackupState: false },
  });
  try {
    await openAt(page, origin);
    const reg = await api('/v1/passkey/register/start', { account: 'yusuf', proof: 'dev' });
    const created = await ceremony(page, 'create', reg.body.options);
    assert.equal((await api('/v1/passkey/register/finish', { session: reg.body.session, credential: created })).status, 200);
    // The provider syncs the passkey now (backup state false -> true).
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    await cdp.send('WebAuthn.setCredentialProperties', { authenticatorId, credentialId: credentials[0].credentialId, backupEligibility: true, backupState: true });
    const login = await api('/v1/passkey/login/start', { account: 'yusuf' });
    const asserted = await ceremony(page, 'get', login.body.options);
    const ok = await api('/v1/passkey/login/finish', { session: login.body.session, credential: asserted });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const log = vault.stderr();
    const line = log.split('\n').find((l) => l.includes('passkey flags changed'));
    assert.ok(line, `the vault logs the change: ${log}`);
    assert.match(line, /backup_state_changed/);
    assert.ok(!line.includes('yusuf'), `no account in the log line: ${line}`);
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  }
});

test('a browser client that forgets to strip its PRF result is refused, and the vault keeps nothing of it', async () => {
  const { page, cdp } = browser;
  const authenticator = await addAuthenticator(cdp, { prf: true });
  try {
    await forgetsToStrip(page);
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: authenticator });
  }
});

async function forgetsToStrip(page) {
  await openAt(page, origin);
  const reg = await api('/v1/passkey/register/start', { account: 'xavier', proof: 'dev' });
  const created = await ceremony(page, 'create', reg.body.options, { prfSalt: Array(32).fill(7) });
  const prfResult = created.clientExtensionResults.prf?.results?.first;
  assert.ok(prfResult, `Chromium evaluated PRF at creation: ${JSON.stringify(created.clientExtensionResults)}`);
  const refused = await api('/v1/passkey/register/finish', { session: reg.body.session, credential: created });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.match(refused.body.message, /PRF/);
  assert.ok(!JSON.stringify(refused.body).includes(prfResult));
  // Stripped, the same credential registers.
  delete created.clientExtensionResults.prf;
  const ok = await api('/v1/passkey/register/finish', { session: reg.body.session, credential: created });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  // Nothing of the PRF result reached the vault's database (file or write-ahead log).
  const stored = ['vault.db', 'vault.db-wal'].map((f) => join(vaultDir, f)).filter(existsSync)
    .map((f) => readFileSync(f).toString('latin1')).join('');
  assert.ok(stored.length > 0);
  assert.ok(!stored.includes(prfResult), 'the PRF result is not stored');
  assert.ok(!stored.includes(Buffer.from(prfResult, 'base64url').toString('latin1')), 'nor its bytes');
}
