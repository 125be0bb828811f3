// The console's behaviour: gather the form, call the JSON endpoints, show what comes back.
// Plain DOM APIs only; no build step. Every POST carries the session's CSRF token.
"use strict";

const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const LANGS = ["fi", "sv", "en"];
let lastCheck = null;      // consenting respondents from the latest "Check matches"
let previewedFor = null;   // the form state the shown preview belongs to

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// Dates are the lead's local days: from the start of the first to the end of the last.
function period() {
  const from = $("from").value, to = $("to").value;
  if (!from || !to) return null;
  return { from: new Date(from + "T00:00:00").toISOString(), to: new Date(to + "T23:59:59.999").toISOString() };
}

function selection() {
  const themes = [...document.querySelectorAll('input[name="theme"]:checked')].map((el) => el.value);
  return { unit: $("unit").value, themes, period: period() };
}

function texts(prefix) {
  const out = {};
  for (const lang of LANGS) {
    const value = $(prefix + lang).value.trim();
    if (value) out[lang] = value;
  }
  return out;
}

function action() {
  const body = { ...selection(), messages: texts("msg-") };
  const title = texts("title-");
  if (Object.keys(title).length) body.title = title;
  return body;
}

function showErrors(errors) {
  const box = $("errors");
  box.textContent = "";
  for (const e of errors || []) {
    const line = document.createElement("div");
    line.textContent = e.field ? `${e.field}: ${e.problem}` : String(e.problem || e);
    box.appendChild(line);
  }
}

async function call(method, url, body) {
  const resp = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) { window.location.assign("/console/login"); throw new Error("signed out"); }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    showErrors(data.errors || [{ problem: data.error || resp.statusText }]);
    throw new Error(data.error || String(resp.status));
  }
  showErrors([]);
  return data;
}

function localCheck(body, needMessage) {
  const problems = [];
  if (!body.themes.length) problems.push({ field: "themes", problem: "choose at least one theme" });
  if (!body.period) problems.push({ field: "period", problem: "choose both dates" });
  if (needMessage && !Object.keys(body.messages || {}).length)
    problems.push({ field: "messages", problem: "write the message in at least one of fi, sv, en" });
  showErrors(problems);
  return problems.length === 0;
}

async function check() {
  const body = selection();
  if (!localCheck(body, false)) return null;
  const data = await call("POST", "/console/api/preview", body);
  lastCheck = data.consenting_respondents;
  $("counts").textContent =
    `${data.feedback} feedback items match; ${data.consenting_respondents} consenting respondents will be notified.`;
  return data;
}

function renderPreviews(previews) {
  const box = $("previews");
  box.textContent = "";
  const h = document.createElement("h2");
  h.textContent = "Email preview";
  box.appendChild(h);
  for (const p of previews) {
    const art = document.createElement("article");
    art.className = "preview";
    art.id = "preview-" + p.for_language;
    art.lang = p.language;
    const who = document.createElement("p");
    who.className = "muted";
    who.textContent = `Respondents who chose ${p.for_language}` +
      (p.language === p.for_language ? "" : ` get the ${p.language} text (no ${p.for_language} message)`) +
      ` · From: ${p.from}`;
    const subject = document.createElement("h3");
    subject.className = "subject";
    subject.textContent = p.subject;
    const pre = document.createElement("pre");
    pre.textContent = p.body;
    art.append(who, subject, pre);
    box.appendChild(art);
  }
}

async function preview() {
  const body = action();
  if (!localCheck(body, true)) return;
  const data = await call("POST", "/console/api/render", { unit: body.unit, messages: body.messages });
  renderPreviews(data.previews);
  previewedFor = JSON.stringify(body);
  $("publish").disabled = false;
}

async function askPublish() {
  if (JSON.stringify(action()) !== previewedFor) {
    $("publish").disabled = true;
    showErrors([{ problem: "the form changed since the preview; preview again" }]);
    return;
  }
  if (lastCheck === null) await check();
  $("confirm-text").textContent =
    `Publish to the public board and notify ${lastCheck} consenting respondents? This cannot be undone.`;
  $("confirm").hidden = false;
}

async function publish() {
  $("confirm").hidden = true;
  const data = await call("POST", "/console/api/publish", action());
  $("result").textContent = `Published action ${data.action_id} at ${data.published_at} by ${data.published_by}.`;
  $("result").dataset.actionId = data.action_id;
  $("publish").disabled = true;
  previewedFor = null;
  setTimeout(loadRecent, 1500);  // the closure worker writes the audit record
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

async function loadRecent() {
  const unit = $("unit").value;
  $("board-link").href = `/board/${encodeURIComponent(unit)}`;
  const data = await call("GET", `/console/api/actions?unit=${encodeURIComponent(unit)}`);
  const tbody = $("recent").querySelector("tbody");
  tbody.textContent = "";
  for (const a of data.actions) {
    const tr = document.createElement("tr");
    const title = a.title || {};
    const first = title.fi || title.sv || title.en || Object.values(a.messages)[0].slice(0, 80);
    cell(tr, a.published_at.slice(0, 16).replace("T", " "));
    cell(tr, a.published_by);
    cell(tr, first);
    cell(tr, a.themes.join(", "));
    cell(tr, a.matched_feedback ?? "");
    cell(tr, a.notifications ?? "");
    cell(tr, a.status || "");
    tbody.appendChild(tr);
  }
}

async function loadStats() {
  const data = await call("GET", "/console/api/stats");
  const tbody = $("stats").querySelector("tbody");
  tbody.textContent = "";
  for (const s of data.units) {
    const tr = document.createElement("tr");
    cell(tr, s.unit);
    cell(tr, s.feedback);
    cell(tr, s.closed);
    cell(tr, (100 * s.closure_rate).toFixed(1) + " %");
    cell(tr, s.median_hours_to_closure === null ? "–" : s.median_hours_to_closure.toFixed(1));
    tbody.appendChild(tr);
  }
}

function guard(fn) {
  return () => fn().catch((err) => console.warn(err));
}

document.addEventListener("DOMContentLoaded", () => {
  const today = new Date();
  $("to").value = isoDay(today);
  $("from").value = isoDay(new Date(today.getTime() - 30 * 86400000));
  $("check").addEventListener("click", guard(check));
  $("preview").addEventListener("click", guard(preview));
  $("publish").addEventListener("click", guard(askPublish));
  $("confirm-publish").addEventListener("click", guard(publish));
  $("cancel-publish").addEventListener("click", () => { $("confirm").hidden = true; });
  $("unit").addEventListener("change", () => { lastCheck = null; $("counts").textContent = ""; guard(loadRecent)(); });
  $("action-form").addEventListener("input", () => { lastCheck = null; });
  guard(loadRecent)();
  guard(loadStats)();
});
