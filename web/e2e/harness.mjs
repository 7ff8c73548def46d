// End-to-end harness: starts the Anthropic stand-in and a real `houston up --demo` on loopback
// ports, puts a cuttable TCP proxy in front of it, and launches Debian's Chromium through
// playwright-core. Everything listens on 127.0.0.1 only.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..');
export const SCREENSHOT_DIR = path.join(REPO_DIR, 'test-artifacts', 'screenshots');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function binary(name) {
  const dir = process.env.HOUSTON_TARGET_DIR ?? path.join(REPO_DIR, 'target', 'debug');
  const file = path.join(dir, name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: build it first with \`cargo build --workspace --bins\``);
  }
  return file;
}

/**
 * Starts a child process and resolves once `match` returns a value for one of its stdout
 * lines. Output is kept for error messages; the process is killed on timeout.
 */
async function startProcess(name, command, args, env, match, timeoutMs = 60_000) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const found = [];
  const errors = readline.createInterface({ input: child.stderr });
  errors.on('line', (line) => lines.push(`[stderr] ${line}`));
  const output = readline.createInterface({ input: child.stdout });
  const result = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms. Output:\n${lines.slice(-40).join('\n')}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready. Output:\n${lines.slice(-40).join('\n')}`));
    });
    output.on('line', (line) => {
      lines.push(line);
      found.push(line);
      const value = match(line, found);
      if (value !== undefined) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(value);
      }
    });
  });
  return { child, result, lines };
}

export async function stopProcess(child) {
  if (!child || child.exitCode !== null) {
    return;
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await once(child, 'exit').catch(() => undefined);
  clearTimeout(timer);
}

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Runs `houston admin ARGS` against the SQLite store of a running `houston up` home. */
export async function houstonAdmin(home, args) {
  const databaseUrl = `sqlite://${path.join(home, 'houston.db')}`;
  const child = spawn(binary('houston'), ['admin', ...args, '--database-url', databaseUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const [code] = await once(child, 'exit');
  if (code !== 0) {
    throw new Error(`houston admin ${args.join(' ')} exited with ${code}:\n${output}`);
  }
  return output;
}

/** Starts the Anthropic stand-in and returns its base URL. */
export async function startStandIn(extraArgs = []) {
  const started = await startProcess(
    'houston-stand-in',
    binary('houston-stand-in'),
    ['--listen', '127.0.0.1:0', ...extraArgs],
    {},
    (line) => (line.match(/^(http:\/\/\S+)/) ?? [])[1],
  );
  return { child: started.child, url: started.result };
}

/**
 * Starts `houston up --demo` with the model pointed at the stand-in. Resolves with the server
 * URL and the demo accounts it printed (`demo user: <email> password: <password>`) once it
 * serves HTTP.
 */
export async function startHouston(standInUrl) {
  const home = mkdtempSync(path.join(os.tmpdir(), 'houston-e2e-'));
  const port = await freePort();
  const env = {
    ...process.env,
    ANTHROPIC_BASE_URL: standInUrl,
    ANTHROPIC_API_KEY: 'stand-in-key',
    HOUSTON_PROVIDER: 'anthropic',
    HOUSTON_WEB_DIR: path.join(WEB_DIR, 'dist'),
    RUST_LOG: process.env.RUST_LOG ?? 'info',
    NO_COLOR: '1',
  };
  const args = ['up', '--demo', '--home', home, '--listen', `127.0.0.1:${port}`];
  const child = spawn(binary('houston'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });

  const lines = [];
  const accounts = [];
  readline.createInterface({ input: child.stderr }).on('line', (line) => lines.push(`[stderr] ${line}`));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    const account = line.match(/demo user: (\S+) password: (\S+)/);
    if (account) {
      accounts.push({ email: account[1], password: account[2] });
    }
  });

  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/login`, 120_000, child);
  } catch (error) {
    await stopProcess(child);
    throw new Error(`${error.message}. Output of houston up:\n${lines.slice(-60).join('\n')}`);
  }
  return {
    url,
    home,
    accounts,
    child,
    output: lines,
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

async function waitForHttp(url, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) {
      throw new Error(`the process exited with ${child.exitCode}`);
    }
    try {
      const response = await fetch(url);
      if (response.status < 500) {
        return;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Starts a TCP proxy on a loopback port in front of `target`. `cut()` resets every open connection,
 * as the browser would experience a network drop, and refuses new ones for `downMs`.
 */
export async function startCuttableProxy(targetUrl) {
  const target = new URL(targetUrl);
  const sockets = new Set();
  let downUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < downUntil) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut(downMs = 1_500) {
      downUntil = Date.now() + downMs;
      for (const socket of sockets) {
        socket.resetAndDestroy();
      }
      sockets.clear();
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Launches Chromium. Playwright gives the browser a new temporary profile, and every
 * `browser.newContext()` has its own storage, so two users can be signed in side by side.
 */
export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Saves a full-page screenshot as `<name>.png` in the screenshot folder. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}
