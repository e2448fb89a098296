// Drives Debian's chromium with the playwright-core npm package (which nobody
// here wrote) against a running casebus: opens the command board, reports
// cases that are overdue at once, and reads the township's light from the page.
// argv: base URL, board token, reporting token of wy-lt, of wy-tx, screenshot path.
// Talks to its caller in JSON lines: prints {"step": …, …}; after the step
// "restart_intake" it waits for a line on stdin (intake was restarted).
'use strict';
const readline = require('readline');
const { chromium } = require('playwright-core');

const [base, boardToken, ltToken, txToken, shot] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

function ago(seconds) {
  const d = new Date(Date.now() - seconds * 1000 + 8 * 3600 * 1000);
  return d.toISOString().replace('Z', '+08:00');
}

// A case found by a township in its own area whose matter a county department
// keeps: the township must transfer it within 3 working days of discovery;
// discovered 30 days ago (longer than any holiday), the limit has passed the moment it is reported.
async function reportOverdue(token, by, township) {
  const res = await fetch(`${base}/v1/cases`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ source: 'patrol', matter_code: '330220001', township_code: township,
      discovered_at: ago(30 * 86400), discovered_by: by, description: '大屏测试 超时案件' }),
  });
  return { status: res.status, body: await res.json() };
}

async function light(page, org) {
  return page.getAttribute(`.tile[data-org="${org}"]`, 'data-light');
}

async function turnsRed(page, org, token, township) {
  const t0 = Date.now();
  const rep = await reportOverdue(token, org, township);
  let ms = null;
  try {
    await page.waitForSelector(`.tile[data-org="${org}"][data-light="red"]`, { timeout: 10000 });
    ms = Date.now() - t0;
  } catch (e) { /* ms stays null: never turned red */ }
  return { report: rep.status, case_id: rep.body.case_id, red_after_ms: ms, light: await light(page, org) };
}

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const login = await page.goto(`${base}/board`);
    say({ step: 'login_page', status: login.status(), has_form: await page.isVisible('form.login-form') });
    await page.fill('#token', boardToken);
    await Promise.all([page.waitForNavigation(), page.click('.login-form button')]);
    say({ step: 'signed_in', url: page.url(), cookies: (await page.context().cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite })) });
    await page.waitForSelector('#link[data-state="live"]', { timeout: 10000 });
    await page.waitForSelector('.tile[data-org="wy-lt"]', { timeout: 10000 });
    const before = await light(page, 'wy-lt');
    const heading = await page.textContent('h1');
    say({ step: 'board', light: before, heading, townships: await page.$$eval('#townships .tile', (t) => t.length) });
    say(Object.assign({ step: 'red' }, await turnsRed(page, 'wy-lt', ltToken, '330723101000')));
    const overdue = await page.$$eval('#overdue tbody tr', (rows) => rows.map((r) => r.textContent));
    const bootId = await page.getAttribute('body', 'data-board-id');
    say({ step: 'overdue_list', rows: overdue, total: await page.textContent('#overdue-total') });
    say({ step: 'restart_intake' });
    await nextLine();
    // The browser reconnects by itself (EventSource, with Last-Event-ID) to the new intake.
    await page.waitForFunction((old) => document.body.dataset.boardId && document.body.dataset.boardId !== old,
      bootId, { timeout: 20000 });
    await page.waitForSelector('#link[data-state="live"]', { timeout: 10000 });
    say({ step: 'reconnected', light: await light(page, 'wy-lt'), board_id: await page.getAttribute('body', 'data-board-id') });
    say(Object.assign({ step: 'red_after_restart' }, await turnsRed(page, 'wy-tx', txToken, '330723102000')));
    say({ step: 'today', total: await page.textContent('#today-total'),
      rows: await page.$$eval('#today tbody tr', (rows) => rows.map((r) => r.textContent)) });
    await page.screenshot({ path: shot, fullPage: true });
    say({ step: 'screenshot', path: shot });
  } catch (e) {
    say({ step: 'error', error: String(e && e.stack || e) });
  } finally {
    await browser.close();
    lines.close();
  }
})();
