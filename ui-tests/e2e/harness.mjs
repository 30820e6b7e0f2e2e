// Shared pieces of the UI end-to-end tests: the sealback binary, a `sealback ui` process per
// "device" (its own HOME), Debian's Chromium with a fresh profile, and CDP virtual
// authenticators with the WebAuthn PRF extension.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const sealback = process.env.SEALBACK_BIN || join(repoRoot, 'target', 'debug', 'sealback');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
export const artifacts = resolve(repoRoot, process.env.SEALBACK_TEST_LOG_DIR || 'test-artifacts', 'ui');
mkdirSync(artifacts, { recursive: true });

export function requireTools() {
  if (!existsSync(sealback)) {
    throw new Error(`missing ${sealback}: run 'cargo build -p sealback-cli' first (./scripts/test does)`);
  }
  if (!existsSync(chromiumPath)) {
    throw new Error(`missing ${chromiumPath}: run 'sudo apt-get install -y chromium' (./scripts/test does as root)`);
  }
}

export function tempDir(name) {
  return mkdtempSync(join(tmpdir(), `sealback-ui-${name}-`));
}

export function run(args, env = {}) {
  return execFileSync(sealback, args, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/// Starts `sealback ui` for one device; resolves with its URL once the first stdout line comes.
export async function startUi({ home, repo, paths = [], account, vaultUrl, testMode = false }) {
  const args = ['--repo', repo];
  if (account) args.push('--account', account);
  args.push('ui', '--no-open', '--listen', '127.0.0.1:0');
  if (testMode) args.push('--test-mode');
  if (vaultUrl) args.push('--vault-url', vaultUrl);
  for (const p of paths) args.push('--path', p);
  return startServer(args, home);
}

/// A Backup Key Vault in development mode (any account proof) on a fresh SQLite database,
/// without the per-account rate limit (the lockout test makes 10 guesses in a row).
export async function startVault(dir, { listen = '127.0.0.1:0', args = [] } = {}) {
  return startServer(['vault', 'serve', '--database', `sqlite:${join(dir, 'vault.db')}`,
    '--key-file', join(dir, 'vault.key'), '--listen', listen, '--dev', '--rate-per-account', '0',
    ...args], dir);
}

/// A TCP port free on 127.0.0.1 now (for a server whose URL must be known before it starts).
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((ok) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => ok(port)); });
  });
}

/// Starts a sealback server process; resolves once it prints its URL (the first stdout line).
async function startServer(args, home) {
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local/share') };
  delete env.SEALBACK_REPO;
  const proc = spawn(sealback, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((ok, fail) => {
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', ok);
    proc.once('exit', (code) => fail(new Error(`sealback ui exited with ${code}: ${stderr}`)));
    setTimeout(() => fail(new Error(`sealback ui printed no URL in 20 s: ${stderr}`)), 20000);
  });
  return {
    url,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launch(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  const profile = tempDir('profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], viewport: { width: 1000, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  // Every script error and Content-Security-Policy violation fails the test that caused it.
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // (Refused API calls are expected in these tests and log "Failed to load resource".)
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`); });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return { context, page, cdp, problems };
}

/// A platform authenticator with resident keys and user verification, and PRF when `prf`.
export async function addAuthenticator(cdp, { prf = true } = {}) {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, hasPrf: prf, automaticPresenceSimulation: true },
  });
  return authenticatorId;
}

/// A digest of every file under `dir` (names and bytes): equal digests mean nothing changed.
export function treeDigest(dir) {
  const h = createHash('sha256');
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) { h.update(`dir ${p}\n`); walk(p); } else { h.update(`file ${p}\n`); h.update(readFileSync(p)); }
    }
  };
  if (existsSync(dir)) walk(dir);
  return h.digest('hex');
}

/// Every regular file under `dir` (none when it does not exist).
export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p); else out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/// Waits for a message newer than the last one this helper returned for `page` (the page numbers
/// its messages in data-seq, from 1 in each loaded document), checks it shows `code` (data-code),
/// and returns its text. A message left over from an earlier step is never taken for the answer
/// to this one.
const lastMessage = new WeakMap();
export async function message(page, code) {
  const last = lastMessage.get(page) || { document: 0, seq: 0 };
  const box = page.locator('#message');
  const seen = await page.waitForFunction(([c, last]) => {
    const m = document.getElementById('message');
    const seq = Number(m.dataset.seq || 0);
    const newer = performance.timeOrigin !== last.document || seq > last.seq;
    return !m.hidden && newer && m.dataset.code === c ? { document: performance.timeOrigin, seq } : false;
  }, [code, last], { timeout: 30000 }).catch(async (e) => {
    const now = await page.evaluate(() => ({ ...document.getElementById('message').dataset, text: document.getElementById('message').innerText }));
    throw new Error(`no new message with code ${code} (after #${last.seq}); the page shows ${JSON.stringify(now)}: ${e.message}`);
  });
  lastMessage.set(page, await seen.jsonValue());
  return (await box.innerText()).trim();
}

/// Removes a virtual authenticator; Chromium allows one internal authenticator per environment,
/// so every test removes its own in a `finally` block (a failure must not break the next test).
export async function removeAuthenticator(cdp, authenticatorId) {
  if (authenticatorId) await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }).catch(() => {});
}

/// What the server says of this tab's session (GET /api/status, with the tab's token).
export function sessionStatus(page) {
  return page.evaluate(async () => (await fetch('/api/status', { headers: { 'X-Sealback-Token': sessionStorage.getItem('sealback-session') } })).json());
}

/// The hooks every browser test file registers: after each test, no script error or CSP
/// violation in the page; at the end, every server in `servers` stopped and the browser closed.
/// `getBrowser` returns the file's browser (launched in its `before`, so not known yet here).
export function browserHooks(getBrowser, servers) {
  test.afterEach(() => {
    const browser = getBrowser();
    const problems = browser ? browser.problems.splice(0) : [];
    assert.deepEqual(problems, [], 'no script errors or CSP violations in the page');
  });
  after(async () => {
    for (const s of servers) await s.stop();
    const browser = getBrowser();
    if (browser) await browser.context.close();
  });
}
