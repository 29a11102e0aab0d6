// graphrec service page: plain JS over the JSON API (no build step).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { fields: [], k: 10 };

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) {
    const err = new Error(body.error || `HTTP ${res.status}`);
    err.field = body.field;
    throw err;
  }
  return body;
}

function status(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "muted";
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function card(item, extra) {
  const fig = document.createElement("figure");
  fig.className = "card" + (item.added ? " new" : "");
  fig.dataset.itemId = item.item_id;
  fig.title = `${item.title}${item.genres ? "\n" + item.genres.split("|").join(", ") : ""}\nitem ${item.item_id}`;
  let poster;
  if (item.image_url) {
    poster = document.createElement("img");
    poster.className = "poster";
    poster.src = item.image_url;
    poster.alt = item.title;
    poster.loading = "eager";
  } else {
    poster = document.createElement("div");
    poster.className = "poster placeholder";
    poster.textContent = (item.title || "?").trim().charAt(0).toUpperCase();
  }
  fig.appendChild(poster);
  if (item.rank !== undefined) fig.appendChild(element("span", "rank", item.rank));
  const badges = element("span", "badges");
  if (item.cold) badges.insertAdjacentHTML("beforeend", '<span class="badge cold">cold</span>');
  if (item.added) badges.insertAdjacentHTML("beforeend", '<span class="badge added">new</span>');
  fig.appendChild(badges);
  const cap = document.createElement("figcaption");
  cap.appendChild(element("span", "title", item.title));
  cap.appendChild(element("span", "meta", extra || (item.genres ? item.genres.split("|").join(", ") : "")));
  fig.appendChild(cap);
  fig.addEventListener("click", () => showSimilar(item));
  return fig;
}

function fill(id, items, extra) {
  const el = $(id);
  el.replaceChildren(...items.map((it) => card(it, extra ? extra(it) : undefined)));
  if (!items.length) el.textContent = "nothing";
}

async function showUser(userId) {
  const k = Math.max(1, Math.min(100, parseInt($("k-input").value, 10) || 10));
  status(`loading user ${userId}…`);
  try {
    const [hist, recs] = await Promise.all([
      api(`/users/${encodeURIComponent(userId)}/history?limit=30`),
      api(`/users/${encodeURIComponent(userId)}/recommendations?k=${k}`),
    ]);
    $("history-count").textContent = `(${hist.items.length} of ${hist.total} shown)`;
    fill("history", hist.items);
    fill("recommendations", recs.items, (it) => `score ${it.score.toFixed(3)}`);
    const cold = recs.items.filter((it) => it.cold).length;
    status(`user ${userId}: top ${recs.items.length}, ${cold} cold`);
    document.body.dataset.user = userId;
  } catch (e) {
    status(e.message, true);
  }
}

async function showSimilar(item) {
  try {
    const sim = await api(`/items/${encodeURIComponent(item.item_id)}/similar?k=8`);
    $("similar-title").textContent = item.title;
    fill("similar", sim.items, (it) => `similarity ${it.similarity.toFixed(2)}`);
    $("similar-section").hidden = false;
  } catch (e) {
    status(e.message, true);
  }
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error("cannot read the poster file"));
    r.readAsDataURL(file);
  });
}

async function addItem(ev) {
  ev.preventDefault();
  const out = $("add-result");
  out.textContent = "adding…";
  const item = {};
  for (const f of state.fields) {
    const v = $(`add-${f}`).value.trim();
    if (v) item[f] = v;
  }
  try {
    const file = $("add-poster").files[0];
    if (file) item.image_base64 = await readFile(file);
    const res = await api("/items", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ items: [item] }),
    });
    const added = res.added[0];
    const aud = await api(`/items/${encodeURIComponent(added.item_id)}/audience?k=${state.k}&limit=40`);
    out.replaceChildren();
    const grid = document.createElement("div");
    grid.className = "grid";
    grid.id = "added-item";
    grid.appendChild(card(added));
    out.appendChild(grid);
    const p = document.createElement("p");
    p.id = "audience-summary";
    p.textContent = `${aud.n_users} of ${aud.total_users} users now get it in their top ${aud.k}` + (aud.n_users ? ":" : ".");
    out.appendChild(p);
    const users = document.createElement("div");
    users.className = "users";
    users.id = "audience";
    for (const u of aud.users) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `user ${u.user_id} (#${u.rank})`;
      b.dataset.userId = u.user_id;
      b.addEventListener("click", () => { $("user-input").value = u.user_id; showUser(u.user_id); });
      users.appendChild(b);
    }
    out.appendChild(users);
    await showInfo();
  } catch (e) {
    out.innerHTML = "";
    const p = document.createElement("p");
    p.className = "error";
    p.id = "add-error";
    p.textContent = e.message + (e.field ? ` (field: ${e.field})` : "");
    out.appendChild(p);
  }
}

async function showInfo() {
  const info = await api("/model");
  $("model-info").textContent =
    `${info.model} · ${info.modalities.join(" + ")} · ${info.users.toLocaleString()} users · ` +
    `${info.items.toLocaleString()} items (${info.added_items} added)`;
  return info;
}

async function init() {
  try {
    const info = await showInfo();
    state.fields = info.item_fields.filter((f) => f !== "image_path");
    const box = $("add-fields");
    for (const f of state.fields) {
      const label = document.createElement("label");
      label.textContent = f.replace(/_/g, " ") + " ";
      const input = document.createElement("input");
      input.id = `add-${f}`;
      input.name = f;
      if (f === "item_id") input.required = true;
      if (f === "genres") input.placeholder = "Comedy|Drama";
      label.appendChild(input);
      box.appendChild(label);
    }
    const users = await api("/users?limit=2000");
    state.users = users.users.map((u) => u.user_id);
    $("user-list").replaceChildren(...state.users.map((u) => Object.assign(document.createElement("option"), { value: u })));
    const first = new URLSearchParams(location.search).get("user");
    if (first) { $("user-input").value = first; showUser(first); }
    document.body.dataset.ready = "1";
  } catch (e) {
    status(e.message, true);
  }
}

$("user-form").addEventListener("submit", (ev) => { ev.preventDefault(); showUser($("user-input").value.trim()); });
$("random-user").addEventListener("click", () => {
  if (!state.users || !state.users.length) return;
  const u = state.users[Math.floor(Math.random() * state.users.length)];
  $("user-input").value = u;
  showUser(u);
});
$("k-input").addEventListener("change", () => { state.k = parseInt($("k-input").value, 10) || 10; });
$("add-form").addEventListener("submit", addItem);
init();
