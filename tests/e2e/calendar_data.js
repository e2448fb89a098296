// casebus's calendars judged by the chinese-days npm package (its data and its
// lunar conversion), which nobody here wrote:
// 1. deploy/calendar/2024-2026.cal give the same working days as chinese-days,
//    day by day (0 differences);
// 2. `casebus calendar convert` of chinese-days' holidays.ics and of its per-year
//    JSON gives the same days again;
// 3. the provisional table (`casebus calendar show YEAR`, 2027-2040) holds every
//    statutory holiday of 全国年节及纪念日放假办法 (2024) at the dates chinese-days'
//    lunar calendar and solar terms give, plus 第六条's make-up days, computed
//    here independently.
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');
const cd = require('chinese-days');

const top = path.resolve(__dirname, '..', '..');
const cli = path.join(top, process.env.BUILD || 'build', 'bin', 'casebus');
const dist = path.join(top, 'node_modules', 'chinese-days', 'dist');
let n = 0, failed = 0;
function ok(cond, name, detail) {
  n++;
  if (cond) {
    console.log(`ok ${n} - ${name}`);
  } else {
    failed++;
    console.log(`not ok ${n} - ${name}`);
    if (detail !== undefined) console.log(`#   ${JSON.stringify(detail).slice(0, 2000)}`);
  }
}
function casebus(...args) {
  return execFileSync(cli, args, { cwd: top, encoding: 'utf8' });
}
const iso = (y, m, d) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
function daysOf(year) {
  const out = [];
  for (let t = Date.UTC(year, 0, 1); new Date(t).getUTCFullYear() === year; t += 86400000) {
    const d = new Date(t);
    out.push(iso(year, d.getUTCMonth() + 1, d.getUTCDate()));
  }
  return out;
}
const weekday = (date) => { const w = new Date(`${date}T00:00:00Z`).getUTCDay(); return w >= 1 && w <= 5; };
// .cal text -> {holidays: Set, workdays: Set}; ranges expanded.
function parseCal(text) {
  const holidays = new Set(), workdays = new Set();
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (words[0] !== 'holiday' && words[0] !== 'workday') continue;
    const [a, b] = words[1].split('..');
    for (let t = Date.parse(`${a}T00:00:00Z`); t <= Date.parse(`${b || a}T00:00:00Z`); t += 86400000) {
      (words[0] === 'holiday' ? holidays : workdays).add(new Date(t).toISOString().slice(0, 10));
    }
  }
  return { holidays, workdays };
}
const working = (cal, date) => cal.workdays.has(date) || (weekday(date) && !cal.holidays.has(date));
function diffYear(cal, year) {
  return daysOf(year).filter((d) => working(cal, d) !== cd.isWorkday(d));
}

// 1. The shipped files.
for (const year of [2024, 2025, 2026]) {
  const cal = parseCal(casebus('calendar', 'show', String(year)));
  const diff = diffYear(cal, year);
  ok(diff.length === 0, `deploy/calendar/${year}.cal: every day of ${year} a working day exactly when chinese-days says so (${diff.length} differences)`, diff);
  const json = require(path.join(dist, 'years', `${year}.json`));
  const theirs = Object.keys(json.holidays).sort().join(), ours = [...cal.holidays].sort().join();
  const theirW = Object.keys(json.workdays).sort().join(), ourW = [...cal.workdays].sort().join();
  ok(theirs === ours && theirW === ourW, `${year}: the same holidays and adjusted working days as chinese-days' ${year}.json`, { ours, theirs, ourW, theirW });
}

// 2. The import formats.
const converted = casebus('calendar', 'convert', path.join(dist, 'holidays.ics'));
const texts = converted.split(/(?=^# converted by casebus)/m);
ok(texts.length === 3, 'holidays.ics converts into three years', texts.length);
for (const text of texts) {
  const year = Number((text.match(/^year (\d+)/m) || [])[1]);
  const diff = diffYear(parseCal(text), year);
  ok(year >= 2024 && year <= 2026 && diff.length === 0, `holidays.ics, ${year}: 0 days differ from chinese-days`, diff);
}
for (const year of [2024, 2025, 2026]) {
  const text = casebus('calendar', 'convert', path.join(dist, 'years', `${year}.json`));
  const diff = diffYear(parseCal(text), year);
  ok(diff.length === 0 && text.includes(`year ${year}`), `chinese-days' ${year}.json: 0 days differ`, diff);
}

// 3. The provisional table, against an independent computation.
function statutory(year) {
  const lunar = (m, d) => cd.getSolarDateFromLunar(iso(year, m, d)).date;
  const qingming = cd.getSolarTerms(`${year}-04-01`, `${year}-04-30`).find((t) => t.name === '清明').date;
  const plus = (date, k) => new Date(Date.parse(`${date}T00:00:00Z`) + k * 86400000).toISOString().slice(0, 10);
  const spring = lunar(1, 1);
  const blocks = [
    [iso(year, 1, 1), 1], [plus(spring, -1), 4], [qingming, 1], [iso(year, 5, 1), 2],
    [lunar(5, 5), 1], [lunar(8, 15), 1], [iso(year, 10, 1), 3],
  ].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const off = new Set();
  for (const [first, len] of blocks) {
    let owed = 0;
    for (let i = 0; i < len; i++) {
      const d = plus(first, i);
      if (!weekday(d) || off.has(d)) owed++; else off.add(d);
    }
    for (let d = plus(first, len); owed > 0; d = plus(d, 1)) {
      if (weekday(d) && !off.has(d)) { off.add(d); owed--; }
    }
  }
  return off;
}
const bad = [];
for (let year = 2027; year <= 2040; year++) {
  const text = casebus('calendar', 'show', String(year));
  const cal = parseCal(text);
  const want = statutory(year);
  const ours = [...cal.holidays].sort().join(), theirs = [...want].sort().join();
  if (!text.includes('provisional') || cal.workdays.size !== 0 || ours !== theirs) bad.push({ year, ours, theirs });
}
ok(bad.length === 0, 'provisional 2027-2040: exactly the statutory holidays by chinese-days\' lunar dates and solar terms, with the make-up days, no swapped weekends', bad);
const y2027 = [...parseCal(casebus('calendar', 'show', '2027')).holidays].sort();
ok(y2027.join() === ['2027-01-01', '2027-02-05', '2027-02-08', '2027-02-09', '2027-02-10', '2027-04-05', '2027-05-03',
  '2027-05-04', '2027-06-09', '2027-09-15', '2027-10-01', '2027-10-04', '2027-10-05'].join(),
'2027 provisional: 元旦 1 Jan; 春节 5-10 Feb (除夕 Fri 5, weekend made up Tue 9, Wed 10); 清明 5 Apr; 劳动节 3-4 May; 端午 9 Jun; 中秋 15 Sep; 国庆 1, 4, 5 Oct', y2027);
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
