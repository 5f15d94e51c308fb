// The status page: polls the node's JSON routes and redraws. Plain DOM, no framework, no build.
// Every value is written with textContent, never as HTML.
"use strict";

const POLL_MS = 2000;
// Orders not yet final: in flight ones matter most (an unknown order is being looked up).
const LIVE_STATES = ["unknown", "submitting", "prepared", "open"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

function badge(text, extra = {}) {
  return el("span", { class: `badge ${text}`, ...extra }, text);
}

function fill(tableId, rows, emptyText, columns) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: String(columns), class: "muted" }, emptyText)));
    return;
  }
  for (const row of rows) body.append(row);
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

function ago(unixSeconds) {
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 90) return `${s.toFixed(0)}s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function td(text, cls) { return el("td", cls ? { class: cls } : {}, text); }

function drawHealth(health) {
  const badgeNode = document.getElementById("health");
  badgeNode.className = `badge ${health.status}`;
  badgeNode.textContent = health.status;
  document.getElementById("health-reason").textContent = health.reason;
  fill("components", health.components.map((c) => el("tr", {},
    td(c.component), el("td", {}, badge(c.status)), td(c.reason, "summary"))), "no components", 3);
}

function drawVenues(venues) {
  const breakers = [];
  const pools = [];
  for (const v of venues) {
    if (!Array.isArray(v.breakers)) {
      breakers.push(el("tr", {}, td(v.venue), el("td", { colspan: "6" }, `unreadable: ${v.breakers?.reason ?? "?"}`)));
    } else {
      for (const b of v.breakers) {
        breakers.push(el("tr", { "data-breaker": b.breaker },
          td(b.breaker, "node-id"),
          el("td", {}, badge(b.state, { "data-testid": `breaker-state-${b.breaker}` })),
          td(`${(100 * b.failure_rate).toFixed(0)}%`, "num"), td(String(b.calls), "num"),
          td(String(b.rejected), "num"), td(`${b.opened_count}×`, "num"),
          td(b.open_for == null ? "" : `${Number(b.open_for).toFixed(1)}s`, "num")));
      }
    }
    const p = v.pool || {};
    const r = v.rate_limit || {};
    const q = p.queued || {};
    const f = p.in_flight || {};
    const rate = r.paused_for ? `paused ${Number(r.paused_for).toFixed(1)}s: ${r.pause_reason}`
      : (r.tokens == null ? "?" : `${Number(r.tokens).toFixed(0)}/${Number(r.capacity).toFixed(0)} tokens`);
    pools.push(el("tr", {}, td(v.venue),
      td(p.idle_workers == null ? "unreadable" : `${p.idle_workers} / ${p.known_workers} (of ${p.expected_workers})`),
      td(`${q.market_data ?? "?"} / ${q.trading ?? "?"}`, "num"),
      td(`${f.market_data ?? "?"} / ${f.trading ?? "?"}`, "num"),
      td(String(p.submitted ?? "?"), "num"), td(String(p.overloaded ?? "?"), "num"),
      td(String(p.expired ?? "?"), "num"), td(rate)));
  }
  fill("breakers", breakers, "no breakers yet", 7);
  fill("pool", pools, "no venue", 8);
}

function drawTree(tree) {
  const container = document.getElementById("tree");
  if (!tree || !tree.children) {
    container.replaceChildren(el("p", { class: "muted" }, `unreadable: ${tree?.reason ?? "?"}`));
    return;
  }
  function list(sup, root) {
    const ul = el("ul", { class: root ? "tree root" : "tree" });
    for (const child of sup.children) {
      const line = el("li", { "data-child": child.name },
        el("span", { class: "node-id" }, child.id), " ", badge(child.state),
        child.kind === "supervisor" && child.supervisor ? el("span", { class: "muted" }, ` ${child.supervisor.strategy}`) : "",
        child.restarts ? el("span", { class: "diff" }, ` restarts ${child.restarts}`) : "",
        child.last_failure ? el("span", { class: "muted" }, ` last failure: ${child.last_failure}`) : "");
      if (child.supervisor && child.supervisor.children) line.append(list(child.supervisor, false));
      ul.append(line);
    }
    return ul;
  }
  container.replaceChildren(el("div", {}, el("span", { class: "node-id" }, tree.id), " ",
    el("span", { class: "muted" }, `${tree.strategy}, ${tree.restarts_in_period} restarts in period`)), list(tree, true));
}

function drawTrading(trading, reconciliation) {
  const line = document.getElementById("trading");
  line.textContent = !trading ? "trading disabled"
    : trading.accepting === false ? `NOT accepting orders: ${trading.not_accepting_reason}`
      : trading.accepting ? `accepting orders; ${trading.open_transactions} in flight, ${trading.overdue} overdue` : "trading unreadable";
  const rec = document.getElementById("reconciliation");
  if (!reconciliation || reconciliation.runs === undefined) { rec.textContent = ""; return; }
  const diffs = Object.entries(reconciliation.currency_differences || {}).map(([k, n]) => `${k} ${n}`).join(", ");
  rec.textContent = `Last reconciliation: ${reconciliation.last_success_age == null ? "none yet"
    : `${Number(reconciliation.last_success_age).toFixed(0)}s ago`} (${reconciliation.runs} runs; currencies: ${diffs || "-"})` +
    (reconciliation.last_failure ? `; last failure: ${reconciliation.last_failure}` : "");
}

function drawOrders(orders) {
  fill("orders", orders.map((o) => el("tr", { "data-order": o.id },
    td(o.id.slice(0, 12), "node-id"), td(o.symbol), td(o.side), td(o.type), td(o.amount, "num"),
    td(o.price ?? "market", "num"), td(o.filled, "num"), el("td", {}, badge(o.state)),
    td(o.created_at.slice(0, 19).replace("T", " ")))), "no open or in-flight orders", 9);
}

const venueFigures = new Map(); // venue -> last answer of /venues/{venue}/balance

function drawBalances(ledger, venues) {
  const rows = [];
  const sources = [];
  for (const v of venues) {
    const answer = venueFigures.get(v);
    if (!answer) { sources.push(`${v}: waiting for the venue's figures`); continue; }
    sources.push(answer.ok
      ? `${v}: the venue's figures from ${answer.source}, ${ago(answer.at)}${answer.stale ? " (stale)" : ""}`
      : `${v}: the venue did not answer (${answer.error}: ${answer.detail}), ${ago(answer.at)}`);
  }
  document.getElementById("venue-source").textContent = sources.join("; ");
  for (const b of ledger) {
    const answer = venueFigures.get(b.venue);
    const venueRow = answer && answer.ok ? answer.balances.find((x) => x.currency === b.currency) : null;
    const venueTotal = venueRow ? venueRow.total : (answer && answer.ok ? "0" : "?");
    let difference = "";
    if (venueTotal !== "?") {
      const d = Number(venueTotal) - Number(b.total); // display only; the ledger compares decimals
      difference = d === 0 ? "0" : d.toPrecision(6);
    }
    rows.push(el("tr", { "data-currency": b.currency },
      td(b.currency), td(b.total, "num"), td(venueTotal, "num"),
      td(difference, difference && difference !== "0" ? "num diff" : "num"),
      td(b.available, "num"), td(venueRow ? venueRow.free : "?", "num"), td(b.reserved, "num"),
      td(b.frozen ?? "")));
  }
  fill("balances", rows, "no balances", 8);
}

async function acknowledge(alertId, button) {
  button.disabled = true;
  const by = document.getElementById("ack-by").value.trim() || "operator";
  const response = await fetch(`/alerts/${encodeURIComponent(alertId)}/ack`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ by }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError(`acknowledge failed: ${body.error?.message ?? response.status}`);
  }
  await poll();
}

function drawAlerts(views) {
  fill("alerts", views.map(({ alert: a, deliveries }) => {
    const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(" ");
    const action = a.state === "firing"
      ? el("button", { "data-testid": `ack-${a.id}`, onclick: (e) => acknowledge(a.id, e.target) }, "Acknowledge")
      : el("span", { class: "muted" }, a.acked_by ? `by ${a.acked_by}` : "");
    const latest = new Map(); // channel -> its latest delivery result (deliveries: latest first)
    for (const d of deliveries) if (!latest.has(d.channel)) latest.set(d.channel, d);
    const delivery = [...latest.values()].map((d) => `${d.channel}: ${d.status}${d.reason ? ` (${d.reason})` : ""}`).join(", ");
    return el("tr", { "data-alert": a.id, "data-state": a.state },
      el("td", {}, badge(a.level)),
      el("td", {}, badge(a.state, { "data-testid": `alert-state-${a.id}` }),
        a.flapping ? " flapping" : "", a.silenced_by.length ? " silenced" : "", a.inhibited ? " inhibited" : ""),
      td(a.rule, "node-id"), td(a.summary, "summary"), td(labels, "muted summary"), td(ago(a.started_at)),
      td(`${a.notifications} sent${delivery ? `; ${delivery}` : ""}`, "muted summary"), el("td", {}, action));
  }), "no active alerts", 8);
}

function showError(text) {
  const node = document.getElementById("error");
  node.textContent = text;
  node.hidden = !text;
}

let venueNames = [];
let lastVenuePoll = 0;

async function pollVenueFigures() {
  if (Date.now() - lastVenuePoll < 5000) return;
  lastVenuePoll = Date.now();
  await Promise.all(venueNames.map(async (v) => {
    const { body } = await getJson(`/venues/${encodeURIComponent(v)}/balance`);
    if (body && body.venue) venueFigures.set(v, body);
  }));
}

async function poll() {
  const problems = [];
  try {
    const status = await getJson("/status");
    if (status.body && status.body.health) {
      drawHealth(status.body.health);
      drawVenues(status.body.venues || []);
      drawTree(status.body.tree);
      drawTrading(status.body.trading, status.body.reconciliation);
      venueNames = (status.body.venues || []).map((v) => v.venue);
    } else {
      problems.push(`/status answered ${status.status}`);
    }
    const [alerts, balances, ...orders] = await Promise.all([getJson("/alerts"), getJson("/balances"),
      ...LIVE_STATES.map((state) => getJson(`/orders?state=${state}`))]);
    if (alerts.status === 200) drawAlerts(alerts.body.alerts); else problems.push(`/alerts answered ${alerts.status}`);
    const refused = orders.find((answer) => answer.status !== 200);
    if (refused) problems.push(`/orders answered ${refused.status}`);
    else drawOrders(orders.flatMap((answer) => answer.body.orders));
    pollVenueFigures().catch(() => {}).finally(() => {
      if (balances.status === 200) drawBalances(balances.body.balances, venueNames);
    });
    if (balances.status !== 200) problems.push(`/balances answered ${balances.status}`);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    problems.push(`the node did not answer: ${error.message}`);
  }
  showError(problems.join("; "));
}

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}
document.addEventListener("DOMContentLoaded", loop);
