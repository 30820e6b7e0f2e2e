// Accessibility (WCAG 2.2 AA) of every screen of `sealback ui`, checked by axe-core inside
// Chromium at desktop (1280x900) and phone (390x844) sizes, and the keyboard path through the
// page. The same run writes the README's screenshots: into test-artifacts/ui/readme/, or into
// docs/screenshots/ with SEALBACK_UPDATE_SCREENSHOTS=1 (they carry dates, so a plain test run
// leaves the checked-in ones alone).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { requireTools, tempDir, run, startUi, startVault, launch, message, repoRoot, artifacts, browserHooks } from './harness.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
const SIZES = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };
const screenshots = process.env.SEALBACK_UPDATE_SCREENSHOTS === '1'
  ? join(repoRoot, 'docs', 'screenshots')
  : join(artifacts, 'readme');

let browser;
const servers = [];
const work = tempDir('a11y');
const chats = join(work, 'chats');

before(async () => {
  requireTools();
  run(['corpus', 'generate', chats, '--seed', '5', '--size', '2M']);
  mkdirSync(screenshots, { recursive: true });
  browser = await launch();
});

browserHooks(() => browser, servers);

/// axe-core's violations on the page as it is now, one line each.
async function violations(page) {
  // Evaluated through the DevTools protocol, which the page's script policy does not govern.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), TAGS);
  assert.ok(result.passes.length > 10, `axe-core ran its rules: ${result.passes.length} passed`);
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/// Shows `view`, checks it at both sizes, and writes a screenshot of it when `shotName` is given.
async function checkScreen(page, view, found, shotName) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.evaluate((v) => { location.hash = '#' + v; }, view);
    await page.locator(`#view-${view}`).waitFor();
    for (const v of await violations(page)) found.push(`${view} at ${size}: ${v}`);
    if (shotName) await page.screenshot({ path: join(screenshots, `${size}-${shotName}.png`), fullPage: true });
  }
}

test('every screen has no WCAG 2.2 AA violations at desktop and phone sizes (axe-core)', async () => {
  const { page } = browser;
  const vault = await startVault(tempDir('vault'));
  servers.push(vault);
  const ui = await startUi({ home: tempDir('home-a11y'), repo: join(tempDir('drive-a11y'), 'drive'), paths: [chats], account: 'ana', vaultUrl: vault.url });
  servers.push(ui);
  await page.goto(ui.url + '#encryption');
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  const found = [];

  // Backup off: the choice, and the 64-digit key being shown.
  await checkScreen(page, 'backup', found);
  await checkScreen(page, 'encryption', found, 'setup');
  await page.getByRole('button', { name: 'Use a 64-digit key', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('recovery-key').textContent.length > 0);
  await checkScreen(page, 'recovery', found);
  const key = (await page.getByLabel('The new 64-digit key').innerText()).trim();
  await page.getByRole('button', { name: 'I saved my key' }).click();
  await page.getByLabel('Enter your 64-digit key').fill(key);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await message(page, 'ok');

  // Unlocked, after two backups.
  for (let i = 0; i < 2; i++) {
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backup complete: \d+ files/).waitFor({ timeout: 120000 });
  }
  await checkScreen(page, 'backup', found, 'backup');
  await checkScreen(page, 'keys', found, 'keys');
  await checkScreen(page, 'snapshots', found, 'snapshots');
  await checkScreen(page, 'restore', found);
  await checkScreen(page, 'password', found);

  // Locked.
  await page.evaluate(() => { location.hash = '#backup'; });
  await page.getByRole('button', { name: 'Lock this session' }).click();
  await page.getByRole('heading', { name: 'Backup is locked' }).waitFor();
  for (const view of ['backup', 'keys', 'snapshots', 'restore']) await checkScreen(page, view, found);

  assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
});

test('the keyboard reaches every control, in order, with a visible focus ring', async () => {
  const { page } = browser;
  const ui = await startUi({ home: tempDir('home-keys'), repo: join(tempDir('drive-keys'), 'drive') });
  servers.push(ui);
  await page.setViewportSize(SIZES.phone);
  await page.goto(ui.url + '#encryption');
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  const seen = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(() => {
      const el = document.activeElement;
      if (el === document.body) return null; // past the last control
      const style = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      return { text: (el.getAttribute('aria-label') || el.textContent).trim(), outline: style.outlineStyle, onScreen: box.right > 0 && box.bottom > 0 && box.width > 0 };
    });
    if (!stop) break;
    seen.push(stop);
  }
  assert.ok(seen.length >= 8, `the tabs and the choices are reachable: ${JSON.stringify(seen)}`);
  assert.equal(seen[0].text, 'Skip to content', 'the first stop skips the navigation');
  for (const s of seen) {
    assert.notEqual(s.outline, 'none', `focus is visible on "${s.text}"`);
    assert.ok(s.onScreen, `"${s.text}" is on screen when focused`);
  }
  assert.ok(seen.some((s) => s.text === 'Use a 64-digit key'), `the setup choices are reachable: ${seen.map((s) => s.text)}`);
  // Enter on the focused choice works like a click.
  await page.getByRole('button', { name: 'Use a 64-digit key', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your 64-digit key', level: 1 }).waitFor();
});
