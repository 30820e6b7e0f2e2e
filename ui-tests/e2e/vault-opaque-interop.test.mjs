// Interop of the key vault's OPAQUE server (opaque-ke) with an OPAQUE client this project did
// not write: npm `@serenity-kit/opaque` (its defaults: RFC 9807 ristretto255 + 3DH/SHA-512,
// Argon2id, empty context, default identifiers), over the vault's plain HTTP API as a web
// client would use it. Registration, a login that releases the stored wrapped key, and a wrong
// password that is counted and releases nothing (docs/VAULT-PROTOCOL.md §1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as opaque from '@serenity-kit/opaque';
import { requireTools, tempDir, startVault } from './harness.mjs';

let vault;

before(async () => {
  requireTools();
  await opaque.ready;
  vault = await startVault(tempDir('vault-opaque'));
});

after(async () => {
  if (vault) await vault.stop();
});

async function api(path, body) {
  const r = await fetch(`${vault.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

const wrapped = Buffer.from('a key only the right password unwraps').toString('base64url');

async function register(account, password) {
  const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password });
  const start = await api('/v1/register/start', { account, proof: 'dev', request: registrationRequest });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const { registrationRecord, exportKey, serverStaticPublicKey } = opaque.client.finishRegistration({
    clientRegistrationState, registrationResponse: start.body.response, password,
  });
  const finish = await api('/v1/register/finish', {
    session: start.body.session, account, proof: 'dev', upload: registrationRecord, wrapped_key: wrapped,
  });
  assert.equal(finish.status, 204, JSON.stringify(finish.body));
  return { exportKey, serverStaticPublicKey };
}

/// Starts a login; returns the vault's reply and the client's result (undefined when the
/// password is wrong: the client finds that out itself).
async function login(account, password) {
  const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password });
  const start = await api('/v1/login/start', { account, proof: 'dev', request: startLoginRequest });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const result = opaque.client.finishLogin({ clientLoginState, loginResponse: start.body.response, password });
  return { start: start.body, result };
}

test('@serenity-kit/opaque registers, logs in and is counted on a wrong password', async () => {
  const info = await (await fetch(`${vault.url}/v1/info`)).json();
  const registered = await register('zoe', 'correct horse battery staple');
  assert.equal(registered.serverStaticPublicKey, info.server_public_key, 'the vault key the client sees is the one it pins');

  const right = await login('zoe', 'correct horse battery staple');
  assert.ok(right.result, 'the right password finishes the login');
  assert.equal(right.result.exportKey, registered.exportKey, 'the export key is stable across login');
  assert.equal(right.start.attempts_remaining, 9);
  const finish = await api('/v1/login/finish', { session: right.start.session, finalization: right.result.finishLoginRequest });
  assert.equal(finish.status, 200, JSON.stringify(finish.body));
  assert.equal(finish.body.wrapped_key, wrapped);

  // A wrong password: the client cannot finish; the vault counted the guess, and a forged
  // finish releases nothing.
  const wrong = await login('zoe', 'tr0ub4dor&3');
  assert.equal(wrong.result, undefined);
  assert.equal(wrong.start.attempts_remaining, 9, 'the success reset the count; this guess leaves 9');
  const forged = await api('/v1/login/finish', {
    session: wrong.start.session, finalization: Buffer.alloc(64).toString('base64url'),
  });
  assert.equal(forged.status, 401, JSON.stringify(forged.body));
  assert.equal(forged.body.error, 'login_failed');
  assert.equal(forged.body.attempts_remaining, 9);
  assert.equal(forged.body.wrapped_key, undefined);
});
