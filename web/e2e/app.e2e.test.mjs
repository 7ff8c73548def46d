// Browser tests of the web app in real Chromium against a real `houston up --demo`, whose
// agents talk to the Anthropic stand-in. Screenshots of every step go to
// test-artifacts/screenshots/.
//
// Run after `cargo build --workspace --bins` and `npm --prefix web run build`:
//   npm --prefix web run e2e

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  houstonAdmin,
  REPO_DIR,
  SCREENSHOT_DIR,
  launchBrowser,
  screenshot,
  startCuttableProxy,
  startHouston,
  startStandIn,
  stopProcess,
} from './harness.mjs';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const VACATION_QUESTION = "What's our vacation policy?";
// The stand-in streams one word per piece with this pause, so an answer takes seconds and a
// test can cut the network or press Stop while it streams.
const TOKEN_DELAY_MS = 150;
const LONG_QUESTION =
  'How many vacation days do I get each year, how many of the days I do not use carry over ' +
  'into the next year, until which date do the carried days stay valid, and whom do I ask ' +
  'when my manager and I disagree about the dates I want to take off this summer?';

/** Returns the full answer, known exactly because the stand-in's default reply quotes the question. */
function expectedAnswer(question) {
  return `Stand-in reply. You wrote: ${question}`;
}

let standIn;
let houston;
let proxy;
let browser;
let juan;
let admin;

before(async () => {
  standIn = await startStandIn(['--token-delay-ms', String(TOKEN_DELAY_MS)]);
  houston = await startHouston(standIn.url);
  proxy = await startCuttableProxy(houston.url);
  browser = await launchBrowser();
  const juanAccount = houston.accounts.find((account) => account.email.startsWith('juan'));
  const adminAccount = houston.accounts.find((account) => account !== juanAccount);
  assert.ok(juanAccount, `no demo account for Juan among ${JSON.stringify(houston.accounts)}`);
  assert.ok(adminAccount, 'no demo admin account');
  juan = { ...juanAccount, page: await newPage() };
  admin = { ...adminAccount, page: await newPage() };
});

after(async () => {
  if (houston) {
    // The server log helps explain a failed step; it sits next to the screenshots.
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    writeFileSync(path.join(SCREENSHOT_DIR, '..', 'houston-up.log'), houston.output.join('\n'));
  }
  await browser?.close();
  await proxy?.close();
  await stopProcess(houston?.child);
  houston?.cleanup();
  await stopProcess(standIn?.child);
});

async function newPage(viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  return page;
}

async function signIn(user, name) {
  const { page } = user;
  await page.goto(`${proxy.url}/login`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await screenshot(page, `${name}-sign-in`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('list', { name: 'Agents' }).waitFor();
}

async function tileSlugs(page) {
  return page.locator('.tile').evaluateAll((tiles) => tiles.map((tile) => tile.dataset.agent).sort());
}

/** The last answer on the chat page: its status and rendered text. */
async function lastAnswer(page) {
  const answer = page.locator('.message.assistant').last();
  return {
    status: await answer.getAttribute('data-status'),
    text: (await answer.locator('.markdown').textContent().catch(() => '')) ?? '',
  };
}

async function ask(page, question) {
  const input = page.getByLabel(/^Message /);
  await input.fill(question);
  await input.press('Enter');
}

/** Waits until the last answer on the page has `status`. */
async function waitForStatus(page, status, timeout = 60_000) {
  await page.waitForFunction(
    (expected) => {
      const answers = document.querySelectorAll('.message.assistant');
      return answers[answers.length - 1]?.getAttribute('data-status') === expected;
    },
    status,
    { timeout },
  );
}

async function waitForText(page, minLength, timeout = 60_000) {
  await page.waitForFunction(
    (length) => {
      const answers = document.querySelectorAll('.message.assistant');
      const last = answers[answers.length - 1]?.querySelector('.markdown');
      return (last?.textContent?.length ?? 0) >= length;
    },
    minLength,
    { timeout },
  );
}

function occurrences(text, part) {
  return text.split(part).length - 1;
}

test('Juan signs in and sees only the HR tile', async () => {
  await signIn(juan, '01-juan');
  await juan.page.locator('.tile').first().waitFor();
  assert.deepEqual(await tileSlugs(juan.page), ['hr']);
  await screenshot(juan.page, '02-juan-home');

  const phone = await newPage(PHONE);
  await phone.goto(`${proxy.url}/login`);
  await phone.getByLabel('Email').fill(juan.email);
  await phone.getByLabel('Password').fill(juan.password);
  await phone.getByRole('button', { name: 'Sign in' }).click();
  await phone.locator('.tile').first().waitFor();
  await screenshot(phone, '02-juan-home-phone');
  await phone.locator('.tile[data-agent="hr"]').click();
  await phone.getByLabel(/^Message /).waitFor();
  await screenshot(phone, '02-juan-chat-phone');
  await phone.context().close();
});

test('vacation answer streams in', async () => {
  const { page } = juan;
  await page.locator('.tile[data-agent="hr"]').click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  await ask(page, VACATION_QUESTION);

  // Sample the answer while it streams: it must grow in several steps, not appear at once.
  const lengths = new Set();
  const deadline = Date.now() + 90_000;
  let answer = await lastAnswer(page);
  while (answer.status !== 'completed' && Date.now() < deadline) {
    if (answer.text.length > 0) {
      lengths.add(answer.text.length);
    }
    if (lengths.size === 2) {
      await screenshot(page, '03-juan-answer-streaming');
    }
    await page.waitForTimeout(50);
    answer = await lastAnswer(page);
  }
  assert.equal(answer.status, 'completed', `answer did not complete: ${answer.text}`);
  assert.ok(lengths.size >= 3, `expected the text to grow in steps, saw lengths ${[...lengths]}`);
  assert.equal(answer.text.trim(), expectedAnswer(VACATION_QUESTION));
  await screenshot(page, '04-juan-answer-complete');
});

test('network cut mid-answer resumes without duplicates', async () => {
  const { page } = juan;
  await ask(page, LONG_QUESTION);
  await waitForText(page, 30);
  const before = await lastAnswer(page);
  proxy.cut(1_500);
  await page.locator('.reconnecting').waitFor({ timeout: 10_000 });
  await screenshot(page, '05-juan-network-cut');
  assert.ok(before.text.length < expectedAnswer(LONG_QUESTION).length, 'the cut came after the answer ended');
  await waitForStatus(page, 'completed', 90_000);
  const streamed = await lastAnswer(page);
  assert.ok(streamed.text.startsWith(before.text), 'text before the cut was changed');
  await screenshot(page, '06-juan-resumed');

  // The stored answer, rendered from history after a reload, must match what streamed.
  await page.reload();
  await waitForStatus(page, 'completed');
  const stored = await lastAnswer(page);
  assert.equal(occurrences(streamed.text, 'Stand-in reply.'), 1, `duplicated text in: ${streamed.text}`);
  assert.equal(streamed.text.trim(), expectedAnswer(LONG_QUESTION));
  assert.equal(stored.text, streamed.text);
});

test('reload during an answer shows it continuing', async () => {
  const { page } = juan;
  await ask(page, LONG_QUESTION);
  await waitForText(page, 30);
  const beforeReload = await lastAnswer(page);
  assert.notEqual(beforeReload.status, 'completed', 'the answer ended before the reload');
  await page.reload();
  await waitForStatus(page, 'completed', 90_000);
  const continued = await lastAnswer(page);
  await screenshot(page, '07-juan-after-reload');
  assert.equal(continued.text.trim(), expectedAnswer(LONG_QUESTION));
  await page.reload();
  await waitForStatus(page, 'completed');
  const stored = await lastAnswer(page);
  assert.equal(continued.text, stored.text);
});

test('stop cancels the answer', async () => {
  const { page } = juan;
  await ask(page, LONG_QUESTION);
  await waitForText(page, 20);
  await page.getByRole('button', { name: 'Stop' }).click();
  await waitForStatus(page, 'cancelled', 30_000);
  await page.getByText('Stopped.').last().waitFor();
  await screenshot(page, '08-juan-stopped');
  // The composer accepts the next message once the turn has ended.
  await page.getByRole('button', { name: 'Send' }).waitFor();
  const stopped = await lastAnswer(page);
  assert.ok(stopped.text.length < expectedAnswer(LONG_QUESTION).length, 'the answer ran to the end');
});

test('keyboard: Shift+Enter, Enter and Esc', async () => {
  const { page } = juan;
  const input = page.getByLabel(/^Message /);
  const answersBefore = await page.locator('.message.assistant').count();
  await input.fill('first line');
  await input.press('Shift+Enter');
  await input.pressSequentially('second line');
  assert.equal(await input.inputValue(), 'first line\nsecond line');
  assert.equal(await page.locator('.message.assistant').count(), answersBefore, 'Shift+Enter sent the message');

  await input.press('Enter');
  await waitForText(page, 20);
  await page.keyboard.press('Escape');
  await waitForStatus(page, 'cancelled', 30_000);
  assert.equal(await page.locator('.message.user').last().textContent(), 'You said:first line\nsecond line');
});

test('model outage shows a plain error and retry works', async () => {
  const { page } = juan;
  const port = new URL(standIn.url).port;
  await stopProcess(standIn.child);
  await ask(page, 'Is the office open on Friday?');
  await waitForStatus(page, 'failed', 120_000);
  const alert = page.locator('.message.assistant').last().getByRole('alert');
  const sentence = await alert.locator('span').first().textContent();
  assert.match(sentence, /AI model/);
  assert.doesNotMatch(sentence, /127\.0\.0\.1|os error|HTTP \d+/, 'the error sentence shows internals');
  assert.doesNotMatch(await alert.textContent(), /stand-in-key|Bearer/, 'the error shows a secret');
  await screenshot(page, '09-juan-model-error');

  standIn = await startStandIn(['--listen', `127.0.0.1:${port}`, '--token-delay-ms', String(TOKEN_DELAY_MS)]);
  await alert.getByRole('button', { name: 'Retry' }).click();
  await waitForStatus(page, 'completed', 60_000);
  assert.equal((await lastAnswer(page)).text.trim(), expectedAnswer('Is the office open on Friday?'));
});

test('admin grant shows the Sales tile without signing in again', async () => {
  await signIn(admin, '10-admin');
  await juan.page.goto(`${proxy.url}/`);
  await juan.page.locator('.tile').first().waitFor();
  assert.deepEqual(await tileSlugs(juan.page), ['hr']);

  const { page } = admin;
  await page.goto(`${proxy.url}/admin/access`);
  const salesBox = page.getByRole('checkbox', { name: new RegExp(`^${juan.email} may use .*(Sales|Revenue)`, 'i') });
  await salesBox.waitFor();
  assert.equal(await salesBox.isChecked(), false);
  await salesBox.check();
  await page.waitForFunction(() => !document.querySelector('table.grid input:disabled'));
  assert.equal(await salesBox.isChecked(), true);
  await screenshot(page, '11-admin-granted-sales');

  await juan.page.locator('.tile[data-agent="sales"]').waitFor({ timeout: 15_000 });
  assert.deepEqual(await tileSlugs(juan.page), ['hr', 'sales']);
  await screenshot(juan.page, '12-juan-sees-sales');
});

test('revoke removes the tile and the direct link', async () => {
  const { page } = admin;
  const salesBox = page.getByRole('checkbox', { name: new RegExp(`^${juan.email} may use .*(Sales|Revenue)`, 'i') });
  await salesBox.uncheck();
  await page.waitForFunction(() => !document.querySelector('table.grid input:disabled'));
  assert.equal(await salesBox.isChecked(), false);
  await screenshot(page, '13-admin-revoked-sales');

  await juan.page.locator('.tile[data-agent="sales"]').waitFor({ state: 'detached', timeout: 15_000 });
  assert.deepEqual(await tileSlugs(juan.page), ['hr']);
  await screenshot(juan.page, '14-juan-sales-gone');

  await juan.page.goto(`${proxy.url}/agents/sales`);
  await juan.page.getByRole('heading', { name: 'Agent not found' }).waitFor();
  await screenshot(juan.page, '15-juan-sales-not-found');
});

// Reads a real Houston definition from the shared fixtures next to the repository.
const SUPPORT_AGENT_DIR = path.join(REPO_DIR, '..', 'shared', 'fixtures', 'houston-agents', 'support');

test('admin creates an agent from a definition', async (t) => {
  if (!existsSync(SUPPORT_AGENT_DIR)) {
    t.skip(`fixture folder ${SUPPORT_AGENT_DIR} is missing`);
    return;
  }
  const { page } = admin;
  await page.setViewportSize(DESKTOP);
  await page.goto(`${proxy.url}/admin/agents`);
  await page.getByLabel('Or upload houston.json').setInputFiles(path.join(SUPPORT_AGENT_DIR, 'houston.json'));
  await page.getByLabel('Or upload CLAUDE.md').setInputFiles(path.join(SUPPORT_AGENT_DIR, 'CLAUDE.md'));
  await page.getByRole('button', { name: 'Create agent' }).click();
  const created = page.locator('.agent-admin-list details', { hasText: 'Head of Customer Success' });
  await created.waitFor();
  await created.locator('summary').click();

  const settings = created.getByRole('form', { name: /^Settings of / });
  await settings.getByLabel('Idle timeout (seconds)').fill('300');
  await settings.getByLabel('Keep warm (never sleep)').check();
  await settings.getByLabel('Allowed hosts (one per line)').fill('api.example.com');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await settings.getByText('Saved.').waitFor();
  await screenshot(page, '16-admin-created-agent');

  await page.reload();
  const reloaded = page.locator('.agent-admin-list details', { hasText: 'Head of Customer Success' });
  await reloaded.locator('summary').click();
  const stored = reloaded.getByRole('form', { name: /^Settings of / });
  assert.equal(await stored.getByLabel('Idle timeout (seconds)').inputValue(), '300');
  assert.equal(await stored.getByLabel('Keep warm (never sleep)').isChecked(), true);
  assert.equal(await stored.getByLabel('Allowed hosts (one per line)').inputValue(), 'api.example.com');

  await page.goto(`${proxy.url}/admin/audit`);
  await page.getByLabel('Action').fill('agent.create');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('tbody tr', { hasText: 'agent.create' }).first().waitFor();
  const actions = await page.locator('tbody tr td:nth-child(3)').allTextContents();
  assert.ok(actions.length > 0 && actions.every((action) => action === 'agent.create'), `rows: ${actions}`);
  await screenshot(page, '17-admin-audit-filtered');
});

test('invited person joins and gets a role', async () => {
  const { page } = admin;
  await page.setViewportSize(DESKTOP);
  await page.goto(`${proxy.url}/admin/invitations`);
  await page.getByLabel('Email').fill('rosa@acme.test');
  await page.getByRole('button', { name: 'Create invitation' }).click();
  const link = await page.getByLabel('Invitation link').inputValue();
  assert.match(link, /\/invite\?token=/);
  await screenshot(page, '18-admin-invitation');

  const invited = await newPage();
  await invited.goto(link);
  await invited.getByLabel('Your name').fill('Rosa');
  await invited.getByLabel('Choose a password').fill('rosa-password-1');
  await invited.getByRole('button', { name: 'Accept invitation' }).click();
  await invited.getByText('No agents are shared with you').waitFor();
  await screenshot(invited, '19-invited-home');
  await invited.context().close();

  await page.goto(`${proxy.url}/admin/members`);
  const role = page.getByLabel('Role of rosa@acme.test');
  const patched = page.waitForResponse((response) => response.request().method() === 'PATCH' && response.url().includes('/members/'));
  await role.selectOption('admin');
  assert.equal((await patched).status(), 200);
  await page.reload();
  assert.equal(await page.getByLabel('Role of rosa@acme.test').inputValue(), 'admin');
});

test('usage charts count the conversation', async () => {
  const { page } = admin;
  await page.goto(`${proxy.url}/admin/usage`);
  const perAgent = page.getByRole('img', { name: /^Messages per agent\./ });
  await perAgent.waitFor();
  const label = await perAgent.getAttribute('aria-label');
  const count = Number(label.match(/HR: (\d+)/)?.[1] ?? 0);
  assert.ok(count >= 5, `expected at least 5 HR messages, chart says: ${label}`);
});

test('workspace switcher changes the tiles', async (t) => {
  const legalDir = path.join(REPO_DIR, '..', 'shared', 'fixtures', 'houston-agents', 'legal');
  if (!existsSync(legalDir)) {
    t.skip(`fixture folder ${legalDir} is missing`);
    return;
  }
  await houstonAdmin(houston.home, ['create-workspace', '--slug', 'beta', '--name', 'Beta Labs']);
  await houstonAdmin(houston.home, ['add-member', '--workspace', 'beta', '--email', juan.email]);
  await houstonAdmin(houston.home, ['create-agent', '--workspace', 'beta', '--slug', 'legal', '--folder', legalDir]);
  await houstonAdmin(houston.home, ['grant', '--workspace', 'beta', '--agent', 'legal', '--email', juan.email]);

  const { page } = juan;
  await page.goto(`${proxy.url}/`);
  const switcher = page.getByLabel('Workspace');
  await switcher.selectOption({ label: 'Beta Labs' });
  await page.locator('.tile[data-agent="legal"]').waitFor();
  assert.deepEqual(await tileSlugs(page), ['legal']);
  await screenshot(page, '21-juan-workspace-beta');

  await switcher.selectOption({ label: 'Acme' });
  await page.locator('.tile[data-agent="hr"]').waitFor();
  assert.deepEqual(await tileSlugs(page), ['hr']);
});

test('admin pages render at desktop and phone width', async () => {
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await admin.page.setViewportSize(viewport);
    for (const tab of ['members', 'invitations', 'access', 'agents', 'audit', 'usage']) {
      await admin.page.goto(`${proxy.url}/admin/${tab}`);
      await admin.page.getByRole('heading', { level: 2 }).waitFor();
      await admin.page.waitForLoadState('networkidle');
      assert.equal(await admin.page.locator('.alert.error').count(), 0, `error on ${tab}`);
      await screenshot(admin.page, `20-admin-${tab}-${label}`);
    }
  }
});
