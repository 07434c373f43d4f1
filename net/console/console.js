// console.js - Allot's customer-service console: plain DOM over POST /v1/METHOD (served by
// allotd; no build step). The token, when the server asks for one, is kept in sessionStorage.
"use strict";

const TOKEN_KEY = "allot.token";
const $ = (id) => document.getElementById(id);
const state = { order: null, customer: null, after: null, pending: null, stream: null };

// ---- talking to the server -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || error.code);
    this.status = status;
    this.code = error.code;
    this.detail = error;
  }
}

async function call(method, params) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("/v1/" + method, {
    method: "POST", headers, body: JSON.stringify(params || {}),
  });
  const body = await response.json().catch(() => ({ error: { code: "INTERNAL", message: "" } }));
  if (!response.ok) {
    const error = new ApiError(response.status, body.error || {});
    if (error.code === "UNAUTHENTICATED") askToken(error);
    throw error;
  }
  return body;
}

// Errors in words: what happened and what to do, never a bare code.
function describe(error) {
  if (!(error instanceof ApiError)) return "The server could not be reached. Check the connection and try again.";
  const d = error.detail;
  switch (error.code) {
    case "INSUFFICIENT_STOCK": {
      const parts = (d.shortfalls || []).map((s) => `${s.sku}: ${s.requested} asked, ${s.available} available`);
      return "Not enough stock" + (parts.length ? " (" + parts.join("; ") + ")." : ".");
    }
    case "INVALID_TRANSITION":
      return `That is not possible while the order is ${words(d.state || "in this state")}. ${d.message}.`;
    case "NOT_FOUND": return `Nothing found: ${d.message}.`;
    case "INVALID_ARGUMENT": return `Please check the form: ${d.message}.`;
    case "CONFLICT": return `That id is already used for something else: ${d.message}.`;
    case "EXPIRED": return `That has expired: ${d.message}.`;
    case "UNAUTHENTICATED": return "The server needs a valid access token.";
    case "TOO_LARGE": return `That request is too large: ${d.message}.`;
    case "OVERLOADED": return "The server is busy right now. Please try again in a moment.";
    case "UNAVAILABLE": return "The server cannot take changes right now (reads still work). Please try again later.";
    case "NOT_LEADER": return "This server is a replica and cannot take changes; use the leader" + (d.leader ? " at " + d.leader : "") + ".";
    case "LIMIT_EXCEEDED": return `The customer already holds the most allowed of ${d.sku} (${d.held} of ${d.limit}).`;
    case "QUEUED": return "This product is sold through a queue; the customer has to wait for their turn.";
    case "UNKNOWN_METHOD": return "This server does not offer that yet.";
    default: return `Something went wrong on the server: ${d.message || "no details"}.`;
  }
}

function words(name) { return String(name).replace(/_/g, " "); }

function notice(text, kind) {
  const box = $("notice");
  box.textContent = text;
  box.className = kind || "error";
  box.hidden = !text;
}

async function attempt(action, success) {
  try {
    const result = await action();
    if (success) notice(success, "ok");
    return result;
  } catch (error) {
    notice(describe(error), "error");
    return null;
  }
}

function askToken(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.pending = location.hash;
  show("token");
  if (error && error.detail && error.detail.message && /retry|failed/.test(error.detail.message))
    notice("That token was not accepted. " + error.detail.message + ".", "error");
}

// ---- small DOM helpers -----------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = el("tr");
  for (const cell of cells) {
    const td = el("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = cell === undefined ? "" : String(cell);
    tr.append(td);
  }
  return tr;
}

function fill(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows);
  if (!rows.length) body.append(row([el("span", "none", "muted")]));
}

function when(ms) { return ms ? new Date(ms).toLocaleString() : ""; }

function orderLink(id) {
  const a = el("a", id);
  a.href = "#/order/" + encodeURIComponent(id);
  return a;
}

function lineText(lines) { return (lines || []).map((l) => `${l.qty} × ${l.sku}`).join(", "); }

// ---- views -----------------------------------------------------------------------------------

const VIEWS = ["token", "find", "order", "queues", "new", "sku"];

function show(name) {
  for (const v of VIEWS) $(v + "-view").hidden = v !== name;
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("active", a.dataset.view === name || (name === "order" && a.dataset.view === "find"));
  $("forget-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

async function route() {
  const [, view, arg] = location.hash.split("/").map(decodeURIComponent);
  notice("");
  if (state.stream) { state.stream.abort(); state.stream = null; }
  switch (view) {
    case "order": show("order"); return loadOrder(arg);
    case "customer": show("find"); return loadCustomer(arg, null);
    case "queues": show("queues"); return loadQueues();
    case "new": show("new"); if (!$("new-lines").tBodies[0].rows.length) addLine(); return;
    case "sku": show("sku"); if (arg) { $("sku-input").value = arg; return loadSku(arg); } return;
    default: show("find");
  }
}

// Find: an order by id, or a customer's orders (newest first, paged).
async function loadCustomer(customer, after) {
  const params = { customer, limit: 20 };
  if (after) params.after = after;
  const page = await attempt(() => call("order.list", params));
  if (!page) return;
  $("customer-orders").hidden = false;
  $("customer-name").textContent = customer;
  $("find-customer").value = customer;
  const rows = page.orders.filter(Boolean).map((o) =>
    row([orderLink(o.id), when(o.created_ms), words(o.state), words(o.payment), lineText(o.lines)]));
  if (after) $("customer-table").tBodies[0].append(...rows); else fill("customer-table", rows);
  state.customer = customer;
  state.after = page.next_after;
  $("customer-more").hidden = !page.next_after;
}

function addressOf(order) { return order.address && typeof order.address === "object" ? order.address : {}; }

async function loadOrder(id) {
  const order = await attempt(() => call("order.get", { id }));
  if (!order) return;
  const previous = state.order;
  state.order = order;
  $("order-id").textContent = order.id;
  $("order-state").textContent = words(order.state);
  $("order-state").dataset.state = order.state;
  const facts = $("order-facts");
  facts.replaceChildren();
  const address = addressOf(order);
  const customerLink = order.customer ? el("a", order.customer) : el("span", "none", "muted");
  if (order.customer) customerLink.href = "#/customer/" + encodeURIComponent(order.customer);
  for (const [k, v] of [["Customer", customerLink], ["Created", when(order.created_ms)],
    ["Payment", words(order.payment)], ["Method", words(order.method)],
    ["Address", Object.values(address).join(", ")], ["Instructions", order.instructions || ""]]) {
    facts.append(el("dt", k));
    const dd = el("dd");
    if (v instanceof Node) dd.append(v); else dd.textContent = v;
    facts.append(dd);
  }
  fill("order-lines", order.lines.map((l) => row([l.sku, l.qty])));
  fill("order-shipments", order.shipments.map((s) =>
    row([s.id, s.location, words(s.state), lineText(s.lines), s.tracking || ""])));
  const history = $("order-history");
  history.replaceChildren(...order.history.map((h) => {
    const li = el("li");
    li.append(el("time", when(h.at_ms)), el("strong", words(h.event.replace(".", " "))));
    const extra = ["reason", "payment", "tracking", "shipment", "return", "disposition"]
      .filter((k) => h[k]).map((k) => `${k}: ${h[k]}`);
    if (h.fields) extra.push("changed: " + h.fields.join(", "));
    if (extra.length) li.append(el("span", extra.join(" · "), "muted"));
    return li;
  }));
  for (const k of ["name", "street", "city", "postcode", "country"]) $("modify-" + k).value = address[k] || "";
  $("modify-instructions").value = order.instructions || "";
  if (!previous || previous.id !== order.id) { $("action-reason").value = ""; $("return-reason").value = ""; }
  const editable = order.state === "created" || order.state === "on_hold";
  $("modify-save").disabled = !editable;
  $("hold-button").disabled = order.state !== "created";
  $("unhold-button").disabled = order.state !== "on_hold";
  $("cancel-button").disabled = !["created", "on_hold", "released"].includes(order.state);
  renderReturnLines(order);
}

// What can still be returned: shipped minus what is already being returned.
function renderReturnLines(order) {
  const shipped = {};
  let anyShipped = false;
  for (const s of order.shipments)
    if (s.state === "shipped" || s.state === "delivered")
      for (const l of s.lines) { shipped[l.sku] = (shipped[l.sku] || 0) + l.qty; anyShipped = true; }
  for (const r of order.returns || [])
    for (const l of r.lines) shipped[l.sku] = (shipped[l.sku] || 0) - l.qty;
  const box = $("return-lines");
  box.replaceChildren();
  const skus = Object.keys(shipped).filter((sku) => shipped[sku] > 0);
  for (const sku of skus) {
    const label = el("label", `${sku} (up to ${shipped[sku]}) `);
    const input = el("input");
    input.type = "number"; input.min = "0"; input.max = String(shipped[sku]); input.value = "0";
    input.dataset.sku = sku;
    label.append(input);
    box.append(label);
  }
  if (!skus.length)
    box.append(el("p", anyShipped ? "Every shipped unit is already being returned." : "Nothing shipped yet that could be returned.", "muted"));
  $("return-create").disabled = !skus.length;
  $("return-label").hidden = true;
}

async function saveDelivery(event) {
  event.preventDefault();
  const address = {};
  for (const k of ["name", "street", "city", "postcode", "country"]) {
    const v = $("modify-" + k).value.trim();
    if (v) address[k] = v;
  }
  const params = { id: state.order.id, address, instructions: $("modify-instructions").value.trim() };
  if (await attempt(() => call("order.modify", params), "Delivery details saved.")) loadOrder(state.order.id);
}

async function orderAction(method, needsReason) {
  const reason = $("action-reason").value.trim();
  if (needsReason && !reason) { notice("Please give a reason.", "error"); return; }
  const params = { id: state.order.id };
  if (reason && method !== "order.unhold") params.reason = reason;
  const done = { "order.hold": "The order is on hold.", "order.unhold": "The hold is released.", "order.cancel": "The order is cancelled; its stock is available again." };
  if (await attempt(() => call(method, params), done[method])) loadOrder(state.order.id);
}

async function createReturn(event) {
  event.preventDefault();
  const lines = [...$("return-lines").querySelectorAll("input")]
    .map((i) => ({ sku: i.dataset.sku, qty: Number(i.value) })).filter((l) => l.qty > 0);
  if (!lines.length) { notice("Choose how many units come back.", "error"); return; }
  const params = { id: state.order.id + "-R" + Date.now().toString(36), order: state.order.id, lines };
  const reason = $("return-reason").value.trim();
  if (reason) params.reason = reason;
  const created = await attempt(() => call("return.create", params), "Return created.");
  if (!created) return;
  await loadOrder(state.order.id);
  $("return-id").textContent = created.id;
  $("return-label-text").textContent = created.label;
  $("return-label").hidden = false;
}

// Queues: orders on hold, orders paid but not released (order.list without customer).
async function loadQueues() {
  const hold = await attempt(() => call("order.list", { state: "on_hold", limit: 100 }));
  if (hold) fill("queue-hold", hold.orders.filter(Boolean).map((o) => {
    const last = [...o.history].reverse().find((h) => h.event === "order.hold");
    return row([orderLink(o.id), o.customer || "", when(o.created_ms), last ? last.reason || "" : ""]);
  }));
  const rows = [];
  for (const payment of ["authorized", "captured"]) {
    const page = await attempt(() => call("order.list", { state: "created", payment, limit: 100 }));
    if (page) rows.push(...page.orders.filter(Boolean).map((o) =>
      row([orderLink(o.id), o.customer || "", when(o.created_ms), words(o.payment)])));
  }
  fill("queue-paid", rows);
}

// New order: lines with live availability (and the delivery promise where the server has it).
function addLine() {
  const sku = el("input"); sku.className = "line-sku"; sku.required = true;
  const qty = el("input"); qty.type = "number"; qty.min = "1"; qty.value = "1"; qty.className = "line-qty";
  const avail = el("span", "", "line-avail");
  const promise = el("span", "", "line-promise muted");
  const remove = el("button", "Remove"); remove.type = "button"; remove.className = "link";
  const tr = row([sku, qty, avail, promise, remove]);
  remove.addEventListener("click", () => { tr.remove(); refreshAvailability(); });
  sku.addEventListener("input", debounce(refreshAvailability, 250));
  qty.addEventListener("input", debounce(refreshAvailability, 250));
  $("new-lines").tBodies[0].append(tr);
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function newOrderPlace() {
  const params = { method: $("new-method").value };
  const lat = $("new-lat").value, lon = $("new-lon").value;
  if (lat !== "" && lon !== "") params.ship_to = { lat: Number(lat), lon: Number(lon) };
  const location = $("new-location").value.trim();
  if (location) params.location = location;
  return params;
}

let promiseSupported = true;

async function refreshAvailability() {
  const rows = [...$("new-lines").tBodies[0].rows];
  const skus = rows.map((r) => r.querySelector(".line-sku").value.trim());
  if (!skus.some(Boolean)) return;
  const params = Object.assign(newOrderPlace(), { skus: skus.map((s) => s || "-") });
  let reply = null;
  try {
    reply = await call("avail.get", promiseSupported ? Object.assign({ promise: true }, params) : params);
  } catch (error) {
    if (promiseSupported && error.code === "INVALID_ARGUMENT" && /promise/.test(error.message)) {
      promiseSupported = false;
      return refreshAvailability();
    }
    notice(describe(error), "error");
    return;
  }
  reply.items.forEach((item, i) => {
    const tr = rows[i];
    const qty = Number(tr.querySelector(".line-qty").value) || 0;
    const avail = tr.querySelector(".line-avail");
    avail.textContent = skus[i] ? String(item.available) : "";
    avail.className = "line-avail " + (skus[i] && item.available < qty ? "short" : "fine");
    const d = item.delivery;
    tr.querySelector(".line-promise").textContent = d ? `${new Date(d.earliest_ms).toLocaleDateString()} – ${new Date(d.latest_ms).toLocaleDateString()} if ordered by ${new Date(d.order_by_ms).toLocaleString()}` : "";
  });
}

async function placeOrder(event) {
  event.preventDefault();
  const customer = $("new-customer").value.trim();
  const lines = [...$("new-lines").tBodies[0].rows].map((r) => ({
    sku: r.querySelector(".line-sku").value.trim(), qty: Number(r.querySelector(".line-qty").value),
  })).filter((l) => l.sku);
  if (!lines.length) { notice("Add at least one line.", "error"); return; }
  const address = {};
  for (const k of ["name", "street", "city", "postcode"]) {
    const v = $("new-" + k).value.trim();
    if (v) address[k] = v;
  }
  const params = Object.assign(newOrderPlace(), { id: "cs-" + Date.now().toString(36), customer, lines });
  if (Object.keys(address).length) params.address = address;
  const order = await attempt(() => call("order.create", params), "Order placed.");
  if (!order) return;
  $("new-lines").tBodies[0].replaceChildren();
  addLine();
  location.hash = "#/customer/" + encodeURIComponent(customer);
}

// SKU: every location's position, reservations held, the ledger, live while shown.
async function loadSku(sku) {
  const stock = await attempt(() => call("stock.get", { sku }));
  if (!stock) { $("sku-result").hidden = true; return; }
  $("sku-result").hidden = false;
  $("sku-totals").textContent = `On hand ${stock.on_hand} · reserved by checkouts ${stock.reserved} · allocated to orders ${stock.allocated} · available ${stock.available}`;
  fill("sku-positions", stock.positions.map((p) =>
    row([p.location, p.on_hand, p.reserved, p.allocated, p.safety_stock, p.available])));
  loadLedger(sku);
  watchSku(sku);
}

async function loadLedger(sku) {
  const note = $("sku-ledger-note");
  try {
    const ledger = await call("ledger.get", { sku, limit: 50 });
    note.hidden = true;
    fill("sku-ledger", (ledger.movements || ledger.entries || []).map((m) =>
      row([when(m.at_ms), m.location, m.delta, m.on_hand, m.reason || "", m.reference || m.ref || ""])));
  } catch (error) {
    note.hidden = false;
    note.textContent = error.code === "UNKNOWN_METHOD" ? "This server keeps no ledger yet." : describe(error);
    fill("sku-ledger", []);
  }
}

// Live updates through GET /v1/events (fetch, so the token goes in a header).
async function watchSku(sku) {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const live = $("sku-live");
  let response;
  try {
    response = await fetch("/v1/events?skus=" + encodeURIComponent(sku), { headers, signal: controller.signal });
  } catch (error) { return; }
  if (!response.ok) { live.textContent = "(not live: refresh to update)"; return; }
  live.textContent = "(live)";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch (error) { return; }
    if (chunk.done) { live.textContent = "(not live: refresh to update)"; return; }
    buffer += decoder.decode(chunk.value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (/^event: (stock|avail)\./m.test(block) && $("sku-input").value === sku) {
        const stock = await call("stock.get", { sku }).catch(() => null);
        if (stock) {
          $("sku-totals").textContent = `On hand ${stock.on_hand} · reserved by checkouts ${stock.reserved} · allocated to orders ${stock.allocated} · available ${stock.available}`;
          fill("sku-positions", stock.positions.map((p) =>
            row([p.location, p.on_hand, p.reserved, p.allocated, p.safety_stock, p.available])));
        }
      }
    }
  }
}

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    try {
      await call("server.info", {});
    } catch (error) {
      if (error.code === "UNAUTHENTICATED") return; // askToken showed why
    }
    notice("");
    location.hash = state.pending && state.pending !== "#/token" ? state.pending : "#/find";
    route();
  });
  $("forget-token").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); askToken(); });
  $("find-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("find-order").value.trim(), customer = $("find-customer").value.trim();
    if (id) location.hash = "#/order/" + encodeURIComponent(id);
    else if (customer) location.hash = "#/customer/" + encodeURIComponent(customer);
    else notice("Type an order id or a customer.", "error");
  });
  $("customer-more").addEventListener("click", () => loadCustomer(state.customer, state.after));
  $("modify-form").addEventListener("submit", saveDelivery);
  $("hold-button").addEventListener("click", () => orderAction("order.hold", true));
  $("unhold-button").addEventListener("click", () => orderAction("order.unhold", false));
  $("cancel-button").addEventListener("click", () => orderAction("order.cancel", false));
  $("return-form").addEventListener("submit", createReturn);
  $("new-add-line").addEventListener("click", addLine);
  $("new-form").addEventListener("submit", placeOrder);
  for (const id of ["new-method", "new-lat", "new-lon", "new-location"])
    $(id).addEventListener("change", refreshAvailability);
  $("sku-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = "#/sku/" + encodeURIComponent($("sku-input").value.trim());
  });
  window.addEventListener("hashchange", route);
  // Does the server want a token? ping never needs one; server.info does when one is set.
  call("server.info", {}).then(route, (error) => { if (error.code !== "UNAUTHENTICATED") route(); });
});
