// The command board: renders each snapshot of /v1/board/stream (Server-Sent
// Events, a whole board per event). The browser's EventSource reconnects on its
// own and sends Last-Event-ID; lateness is counted here, second by second.
"use strict";

const STATES = {
  reported: "已上报", transfer_required: "待移送", transfer_routed: "已移送",
  transfer_in_progress: "移送中", with_competent: "办理中", manual_dispatch: "待分流",
  return_review: "退单待审", cancelled: "已撤销",
};
let board = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function span(ms) {
  const m = Math.floor(Math.abs(ms) / 60000);
  if (m >= 1440) return `${Math.floor(m / 1440)}天${Math.floor((m % 1440) / 60)}小时`;
  if (m >= 60) return `${Math.floor(m / 60)}小时${m % 60}分`;
  return `${m}分`;
}

function hhmm(text) {
  return text ? text.slice(5, 16).replace("T", " ") : "—";
}

// 履坦镇人民政府 -> 履坦镇, 武义县市场监督管理局 -> 市场监督管理局: what fits a wall tile.
function shortName(name) {
  return name.replace(/人民政府$|办事处$/, "").replace(/^(金华市)?武义县/, "").replace(/^金华市/, "");
}

function tile(t) {
  const counts = el("div", { class: "counts" },
    "在办 ", el("b", {}, t.open), " 黄 ", el("span", { class: "y" }, t.yellow),
    " 红 ", el("span", { class: "r" }, t.red), " 督办 ", el("span", { class: "r" }, t.escalated));
  return el("div", { class: "tile", "data-org": t.org_id, "data-light": t.light, title: t.org_id },
    el("div", { class: "light" }), el("div", { class: "name", title: t.name }, shortName(t.name)), counts);
}

function render() {
  if (!board) return;
  document.getElementById("townships").replaceChildren(...board.townships.map(tile));
  document.getElementById("departments").replaceChildren(...board.departments.map(tile));
  const now = Date.now();
  document.getElementById("overdue-total").textContent = board.overdue.total;
  document.querySelector("#overdue tbody").replaceChildren(...board.overdue.items.map((o) =>
    el("tr", { "data-obligation": o.obligation_id },
      el("td", {}, o.case_id || "—"), el("td", {}, o.title), el("td", {}, o.responsible.name || o.responsible.org_id),
      el("td", {}, hhmm(o.due_at)), el("td", { class: "late" }, span(now - Date.parse(o.due_at))),
      el("td", {}, o.supervision_id ? "已督办" : ""))));
  document.getElementById("today-total").textContent = board.today.total;
  document.querySelector("#today tbody").replaceChildren(...board.today.items.map((c) =>
    el("tr", {}, el("td", {}, c.case_id), el("td", {}, hhmm(c.reported_at)), el("td", {}, c.township),
      el("td", {}, c.matter), el("td", {}, STATES[c.state] || c.state))));
  document.getElementById("generated").textContent = `数据时间 ${hhmm(board.generated_at)} · ${board.id}`;
}

function link(up) {
  const l = document.getElementById("link");
  l.textContent = up ? "实时" : "重连中";
  l.className = "link " + (up ? "up" : "down");
  l.dataset.state = up ? "live" : "reconnecting";
}

function tick() {
  document.getElementById("clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  render();
}

window.addEventListener("DOMContentLoaded", () => {
  const stream = new EventSource("/v1/board/stream");
  stream.addEventListener("board", (e) => { board = JSON.parse(e.data); document.body.dataset.boardId = board.id; render(); });
  stream.addEventListener("open", () => link(true));
  stream.addEventListener("error", () => link(false));
  tick();
  setInterval(tick, 1000);
});
