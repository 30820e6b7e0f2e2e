// The page's relying party: passkeys made by `sealback ui` belong to this installation's own
// address, http://sb-LABEL.localhost:PORT, so a page another local user serves on another port
// (http://localhost:OTHER) cannot ask them for their PRF output; a second device restoring from
// the same drive adopts the label of the drive's passkeys, so the synced passkey still works.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { requireTools, tempDir, run, startUi, launch, addAuthenticator, removeAuthenticator, message, sessionStatus, browserHooks } from './harness.mjs';

let browser;
const work = tempDir('rp');
const chats = join(work, 'chats');
const drive = join(work, 'drive');
const servers = [];

before(async () => {
  requireTools();
  run(['corpus', 'generate', chats, '--seed', '11']);
  browser = await launch();
});

browserHooks(() => browser, servers);

/// A plain HTTP page on another loopback port: what any local user can serve.
async function otherLocalPage() {
  const srv = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>another app</title>'); });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  servers.push({ stop: () => new Promise((ok) => srv.close(ok)) });
  return `http://localhost:${srv.address().port}/`;
}

test('the page passkey belongs to sb-LABEL.localhost: a page on another local port cannot get its PRF output, and a second device adopts the label', async () => {
  const { page, cdp } = browser;
  const authenticator = await addAuthenticator(cdp, { prf: true });
  try {
    const phone = await startUi({ home: tempDir('home-rp-phone'), repo: drive, paths: [chats] });
    servers.push(phone);
    const host = new URL(phone.url).hostname;
    assert.match(host, /^sb-[a-z2-7]{12}\.localhost$/, `the page is served at its own address: ${phone.url}`);
    await page.goto(phone.url);
    await page.getByRole('link', { name: 'Turn on end-to-end encrypted backup' }).click();
    await page.getByRole('button', { name: 'Turn on with a passkey' }).click();
    assert.match(await message(page, 'ok'), /End-to-end encrypted backup is on/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].rpId, host, 'the passkey belongs to the page address');

    // Another local user's page on another port asks the same authenticator, under the RP it
    // may use (localhost) and under the page's (refused by the browser): no PRF output either way.
    await page.goto(await otherLocalPage());
    const attempts = await page.evaluate(async ([credentialId, rpHost]) => {
      const id = Uint8Array.from(atob(credentialId.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
      const ask = async (rpId) => {
        try {
          const a = await navigator.credentials.get({ publicKey: {
            challenge: new Uint8Array(32), rpId, userVerification: 'required', timeout: 5000,
            allowCredentials: [{ type: 'public-key', id }],
            extensions: { prf: { eval: { first: new Uint8Array(32) } } },
          } });
          const r = a.getClientExtensionResults();
          return { got: true, prf: !!(r.prf && r.prf.results && r.prf.results.first) };
        } catch (e) { return { got: false, error: e.name }; }
      };
      return { localhost: await ask('localhost'), page: await ask(rpHost) };
    }, [credentials[0].credentialId, host]);
    assert.equal(attempts.localhost.got, false, `RP localhost reaches no passkey of the page: ${JSON.stringify(attempts)}`);
    assert.equal(attempts.page.got, false, `the page's RP is refused on another origin: ${JSON.stringify(attempts)}`);
    assert.equal(attempts.page.error, 'SecurityError', JSON.stringify(attempts));
    await phone.stop();

    // A new device: a fresh HOME (no label yet), the same drive, the same synced passkey.
    const laptop = await startUi({ home: tempDir('home-rp-laptop'), repo: drive });
    servers.push(laptop);
    assert.equal(new URL(laptop.url).hostname, host, 'the new device serves the page under the label of the drive passkeys');
    await page.goto(laptop.url + '#backup');
    await page.getByRole('heading', { name: 'Backup is locked' }).waitFor();
    assert.ok(await page.locator('#adopted-address').isVisible(), 'the page says it took the address from the backup');
    await page.locator('#backup-locked').getByRole('button', { name: 'Unlock with passkey' }).click();
    assert.match(await message(page, 'ok'), /Unlocked/);
    assert.equal((await sessionStatus(page)).unlocked, true);
    await laptop.stop();
  } finally {
    await removeAuthenticator(cdp, authenticator);
  }
});
