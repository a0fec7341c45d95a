// flask-toucan sandbox: the script of /embed.html (a stand-in for a Toucan 3 embed).
// The server checked the token before sending the page; this script makes the data call
// (GET /api/v1/embeds/{id}, the token as Bearer) and draws the tenant's rows with text
// nodes only. Hooks for tests, on <main id="tc-embed">:
//   data-state      loading | ready | error
//   data-error      the data call's error code (token_expired, invalid_token, ...)
//   data-tenant     the token's organization id; data-row-count the rows drawn
//   data-view       the view= it was given; <pre class="tc-variables"> the variables' extra as JSON
const STYLE = `
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; background: #fff; }
.tc-embed { padding: 12px; }
.tc-title { font-weight: 600; font-size: 16px; margin: 0 0 4px; }
.tc-tenant { font-size: 12px; padding: 2px 8px; border-radius: 999px; background: #ddf4ff; color: #0969da; }
.tc-table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 8px; }
.tc-table th, .tc-table td { text-align: left; padding: 3px 6px; border-bottom: 1px solid rgba(128,128,128,.25); }
.tc-message { padding: 8px; border-radius: 6px; background: rgba(128,128,128,.12); }
.tc-message.tc-error { background: #ffebe9; color: #82071e; }
.tc-variables { font-size: 11px; }
`;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function style() {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch (err) {
    /* unstyled, still functional */
  }
}

function fail(root, code, message) {
  root.setAttribute("data-state", "error");
  root.setAttribute("data-error", code);
  root.replaceChildren(el("p", { class: "tc-message tc-error", role: "alert" }, message));
}

function draw(root, data) {
  const head = el("div", { class: "tc-header" });
  head.append(el("p", { class: "tc-title" }, data.title));
  head.append(el("span", { class: "tc-tenant" }, (data.tenant && data.tenant.name) || ""));
  const table = el("table", { class: "tc-table" });
  const header = el("tr");
  for (const col of data.columns) header.append(el("th", {}, col));
  table.append(header);
  for (const row of data.rows) {
    const tr = el("tr", { "data-row-id": row.id });
    for (const col of data.columns) tr.append(el("td", { "data-col": col }, row[col]));
    table.append(tr);
  }
  const vars = el("pre", { class: "tc-variables" }, JSON.stringify(data.variables.extra));
  root.replaceChildren(head, table, vars);
  root.setAttribute("data-tenant", (data.tenant && data.tenant.id) || "");
  root.setAttribute("data-row-count", String(data.rows.length));
  if (data.view !== null) root.setAttribute("data-view", data.view);
  root.setAttribute("data-state", "ready");
}

async function main() {
  const root = document.getElementById("tc-embed");
  if (!root || root.getAttribute("data-state") !== "loading") return; // the server refused it
  style();
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  params.delete("token");
  params.delete("id");
  const id = encodeURIComponent(root.getAttribute("data-embed-id") || "");
  let resp;
  let body = null;
  try {
    resp = await fetch(`/api/v1/embeds/${id}?${params}`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    body = await resp.json().catch(() => null);
  } catch (err) {
    fail(root, "network", "The embed's data could not be loaded.");
    return;
  }
  if (!resp.ok || !body) {
    fail(root, (body && String(body.code || "").toLowerCase()) || "error", (body && body.message) || "error");
    return;
  }
  draw(root, body);
}

main();
