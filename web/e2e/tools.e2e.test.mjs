// Browser test of the tool flow in real Chromium against a real `houston up --demo`. Juan
// requests that HR post the vacation policy to #general, approves the post, sees "Calling
// Slack…" and a connect card, and opens the connect link (the Composio stand-in's connect page
// finishes the connection). The answer then continues to the outcome. The model and Composio are the stand-ins of
// `houston-tools-stand-in`. Screenshots go to test-artifacts/screenshots/.
//
// Run after `cargo build --workspace --bins` and `npm --prefix web run build`:
//   npm --prefix web run e2e   (or only this file: node --test web/e2e/tools.e2e.test.mjs)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { REPO_DIR, launchBrowser, screenshot, startHouston, stopProcess } from './harness.mjs';

const COMPOSIO_KEY = 'composio-browser-key';

let standIns;
let houston;
let browser;

/** Starts `houston-tools-stand-in` and resolves with its two base URLs. */
function startToolsStandIn() {
  const dir = process.env.HOUSTON_TARGET_DIR ?? path.join(REPO_DIR, 'target', 'debug');
  const child = spawn(path.join(dir, 'houston-tools-stand-in'), [COMPOSIO_KEY], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('houston-tools-stand-in printed no URLs within 30 s')), 30_000);
    child.on('exit', (code) => reject(new Error(`houston-tools-stand-in exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = line.match(/^anthropic=(\S+) composio=(\S+)$/);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, anthropic: match[1], composio: match[2] });
      }
    });
  });
}

before(async () => {
  standIns = await startToolsStandIn();
  // houston up passes its environment on: the egress proxy adds this key to Composio requests.
  process.env.COMPOSIO_API_KEY = COMPOSIO_KEY;
  process.env.COMPOSIO_BASE_URL = standIns.composio;
  houston = await startHouston(standIns.anthropic);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopProcess(houston?.child);
  houston?.cleanup();
  await stopProcess(standIns?.child);
});

/** Marks SLACK_SEND_MESSAGE as needing approval in the HR agent's config file on its volume. */
async function requireApproval(juan) {
  const login = await fetch(`${houston.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: juan.email, password: juan.password }),
  });
  const { access_token: token } = await login.json();
  const agents = await (await fetch(`${houston.url}/v1/agents`, { headers: { authorization: `Bearer ${token}` } })).json();
  const hr = agents.agents.find((agent) => agent.slug === 'hr');
  const configDir = path.join(houston.home, 'agents', hr.id, '.houston', 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(path.join(configDir, 'config.json'), JSON.stringify({ tools: { require_approval: ['SLACK_SEND_MESSAGE'] } }));
}

test('approval card, connect card, then the Slack post', async () => {
  const juan = houston.accounts.find((account) => account.email.startsWith('juan'));
  assert.ok(juan, `no demo account for Juan among ${JSON.stringify(houston.accounts)}`);
  await requireApproval(juan);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));

  await page.goto(`${houston.url}/login`);
  await page.getByLabel('Email').fill(juan.email);
  await page.getByLabel('Password').fill(juan.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('list', { name: 'Agents' }).waitFor();
  await page.goto(`${houston.url}/agents/hr`);

  const input = page.getByLabel(/^Message /);
  await input.fill('post our vacation policy to #general');
  await input.press('Enter');

  const approval = page.getByRole('group', { name: 'Approve Calling Slack…' });
  await approval.waitFor({ timeout: 60_000 });
  const toolLine = page.locator('.tool').first();
  assert.equal(await toolLine.getAttribute('data-tool-state'), 'needs_approval');
  await screenshot(page, 'tools-00-approval');
  await approval.getByRole('button', { name: 'Approve' }).click();

  const card = page.getByRole('group', { name: 'Connect Slack' });
  await card.waitFor({ timeout: 60_000 });
  assert.match(await toolLine.textContent(), /Calling Slack…/);
  assert.equal(await toolLine.getAttribute('data-tool-state'), 'needs_connection');
  await screenshot(page, 'tools-01-connect-card');

  const [connectPage] = await Promise.all([context.waitForEvent('page'), card.getByRole('link', { name: 'Connect Slack' }).click()]);
  await connectPage.waitForLoadState();
  assert.match(await connectPage.textContent('h1'), /Connected/);
  await connectPage.close();

  await page.waitForFunction(
    () => {
      const answers = document.querySelectorAll('.message.assistant');
      return answers[answers.length - 1]?.getAttribute('data-status') === 'completed';
    },
    null,
    { timeout: 60_000 },
  );
  assert.equal(await toolLine.getAttribute('data-tool-state'), 'ok');
  const answer = await page.locator('.message.assistant').last().locator('.markdown').textContent();
  assert.match(answer, /Posted our vacation policy to #general\./);
  await screenshot(page, 'tools-02-posted');
  await context.close();
});
