// flask-toucan sandbox: <tc-dashboard> and <tc-ai-assistant>, a local stand-in
// for Toucan AI's embed script. Standard Web APIs only, no build step, no
// inline script or style needed (works under a strict CSP).
//
// Rendering is into the light DOM, so page CSS and test selectors reach it.
// Data from the API is only ever inserted with textContent / setAttribute,
// never as HTML.
//
// Hooks for tests and for the host's refresh script (see docs/sandbox.md):
//   data-state     loading | ready | error | expired   (assistant: also idle, asking, forbidden)
//   data-error     the last error code (invalid_token, forbidden, ...)
//   data-tenant    organization id of the token; data-tenant-name its display name
//   data-row-count number of table rows rendered (<tr data-row-id="...">)
// Events (bubbles, composed):
//   toucan:ready          detail {tenant, rowCount}
//   toucan:token-expired  detail {status: 401, error: "token_expired", component}
//   toucan:error          detail {status, error, component}

const SCRIPT_BASE = new URL("..", import.meta.url).href.replace(/\/$/, "");
const SVG_NS = "http://www.w3.org/2000/svg";

const STYLE = `
tc-dashboard, tc-ai-assistant { display: block; box-sizing: border-box; overflow: auto;
  font: 14px/1.4 system-ui, sans-serif; border: 1px solid #d0d7de; border-radius: 8px;
  padding: 12px; background: #fff; color: #1f2328; }
tc-dashboard[data-theme="dark"], tc-ai-assistant[data-theme="dark"] { background: #0d1117; color: #e6edf3; border-color: #30363d; }
.tc-header { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; margin-bottom: 8px; }
.tc-title { font-weight: 600; font-size: 16px; margin: 0; }
.tc-tenant { font-size: 12px; padding: 2px 8px; border-radius: 999px; background: #ddf4ff; color: #0969da; }
[data-theme="dark"] .tc-tenant { background: #132339; color: #79c0ff; }
.tc-chart { display: block; width: 100%; height: 160px; margin: 8px 0; }
.tc-chart rect { fill: #2f81f7; }
.tc-chart text { font-size: 9px; fill: currentColor; }
.tc-table { border-collapse: collapse; width: 100%; font-size: 12px; }
.tc-table th, .tc-table td { text-align: left; padding: 3px 6px; border-bottom: 1px solid rgba(128,128,128,.25); }
.tc-table td.tc-num { text-align: right; font-variant-numeric: tabular-nums; }
.tc-message { padding: 8px; border-radius: 6px; background: rgba(128,128,128,.12); }
.tc-message.tc-error { background: #ffebe9; color: #82071e; }
.tc-form { display: flex; gap: 8px; margin: 8px 0; }
.tc-form input { flex: 1; min-width: 0; padding: 8px 10px; font: inherit; color: inherit;
  background: transparent; border: 1px solid #d0d7de; border-radius: 6px; }
.tc-form input:focus { outline: 2px solid #2f81f7; outline-offset: 1px; border-color: #2f81f7; }
.tc-form button, .tc-suggestions button { font: inherit; cursor: pointer; border-radius: 6px; }
.tc-form button { padding: 8px 16px; font-weight: 600; color: #fff; background: #2f81f7; border: 1px solid #2f81f7; }
.tc-form button:hover { background: #1f6feb; }
.tc-answers { margin: 0; padding-left: 18px; }
.tc-suggestions { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 8px; }
.tc-suggestions button { padding: 4px 10px; font-size: 12px; color: #0969da; background: #ddf4ff; border: 1px solid transparent; }
.tc-suggestions button:hover { border-color: #54aeff; }
[data-theme="dark"] .tc-form input { border-color: #30363d; }
[data-theme="dark"] .tc-suggestions button { background: #132339; color: #79c0ff; }
.tc-question { font-weight: 600; }
.tc-answers li { margin: 6px 0; }
`;

let styleInstalled = false;
function installStyle() {
  if (styleInstalled) return;
  styleInstalled = true;
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch (_) {
    /* old browser: unstyled, still functional */
  }
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fmt(value) {
  return typeof value === "number" ? value.toLocaleString("en-US") : String(value ?? "");
}

// Shared behaviour: token handling, fetching, events, no 401 retry loop.
class ToucanElement extends HTMLElement {
  constructor() {
    super();
    this._seq = 0;
    this._abort = null;
    this._deadToken = null; // a token the API refused with 401: never sent again
    this._timer = null;
  }

  get serverUrl() {
    // server-url is the instance's API root (Toucan's docs: https://toucanai.cloud/api).
    return (this.getAttribute("server-url") || SCRIPT_BASE + "/api").replace(/\/$/, "");
  }

  get authToken() {
    return (this.getAttribute("auth-token") || "").trim();
  }

  connectedCallback() {
    installStyle();
    this._connected = true;
    this._schedule();
    this.refresh();
  }

  disconnectedCallback() {
    this._connected = false;
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    if (this._abort) this._abort.abort();
  }

  _schedule() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    const seconds = parseFloat(this.getAttribute("refresh-interval") || "");
    if (this._connected && seconds > 0) {
      this._timer = setInterval(() => this.refresh(), Math.max(seconds, 0.5) * 1000);
    }
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
  }

  // Fetch JSON from the data API; resolves to {ok, status, body} or null when superseded.
  async _call(path, init = {}) {
    const token = this.authToken;
    if (!token) {
      this._fail(0, "missing_token");
      return null;
    }
    if (token === this._deadToken) return null; // wait for a new auth-token attribute
    if (this._abort) this._abort.abort();
    const abort = new AbortController();
    this._abort = abort;
    const seq = ++this._seq;
    let resp;
    let body = null;
    try {
      resp = await fetch(this.serverUrl + path, {
        ...init,
        mode: "cors",
        credentials: "omit",
        signal: abort.signal,
        headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) },
      });
      try { body = await resp.json(); } catch (_) { body = null; }
    } catch (err) {
      if (seq !== this._seq) return null;
      if (err && err.name === "AbortError") return null;
      this._fail(0, "network_error");
      return null;
    }
    if (seq !== this._seq) return null; // a newer request (new token) superseded this one
    // Errors come in Toucan's envelope {code: "UPPER_SNAKE", message}; events and
    // data-error carry the code in lower case (token_expired, forbidden, ...).
    const code = body && typeof body.code === "string" ? body.code.toLowerCase() : null;
    const error = code || (resp.ok ? null : `http_${resp.status}`);
    if (resp.status === 401) {
      this._deadToken = token;
      if (error === "token_expired") {
        this.setAttribute("data-state", "expired");
        this.setAttribute("data-error", error);
        this._message("Session expired; waiting for a new token.", false);
        this._emit("toucan:token-expired", { status: 401, error, component: this.localName });
      } else {
        this._fail(401, error);
      }
      return null;
    }
    if (!resp.ok) {
      this._fail(resp.status, error, body);
      return null;
    }
    this.removeAttribute("data-error");
    return { status: resp.status, body };
  }

  _fail(status, error) {
    this.setAttribute("data-state", status === 403 && this._forbiddenState ? this._forbiddenState : "error");
    this.setAttribute("data-error", error);
    this._message(status === 403 ? "Not allowed: this token does not grant access here." : `Could not load (${error}).`, true);
    this._emit("toucan:error", { status, error, component: this.localName });
  }

  _message(text, isError) {
    const box = el("div", { class: isError ? "tc-message tc-error" : "tc-message", role: "status" }, text);
    this.replaceChildren(box);
    this.removeAttribute("data-row-count"); // the rows are gone from the DOM
    if (isError) this._setTenant(null); // an error shows no tenant's data
  }

  _setTenant(tenant) {
    if (tenant && tenant.id) {
      this.setAttribute("data-tenant", tenant.id);
      this.setAttribute("data-tenant-name", tenant.name || tenant.id);
    } else {
      this.removeAttribute("data-tenant");
      this.removeAttribute("data-tenant-name");
    }
  }

  _header(title, tenant) {
    const header = el("div", { class: "tc-header" });
    header.append(el("h3", { class: "tc-title" }, title));
    if (tenant && tenant.id) header.append(el("span", { class: "tc-tenant", "data-tenant": tenant.id }, tenant.name || tenant.id));
    return header;
  }
}

class TcDashboard extends ToucanElement {
  static get observedAttributes() {
    return ["auth-token", "dashboard-id", "chart-id", "server-url", "refresh-interval"];
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this._connected) return;
    if (name === "refresh-interval") {
      this._schedule();
      return;
    }
    this.refresh();
  }

  get resourcePath() {
    const chart = this.getAttribute("chart-id");
    if (chart) return `/v1/charts/${encodeURIComponent(chart)}`;
    const dash = this.getAttribute("dashboard-id") || "";
    return `/v1/dashboards/${encodeURIComponent(dash)}`;
  }

  async refresh() {
    if (this.authToken && this.authToken === this._deadToken) return; // no 401 loop
    if (!this.hasAttribute("data-state") || this.getAttribute("data-state") !== "ready") {
      this.setAttribute("data-state", "loading");
    }
    const result = await this._call(this.resourcePath);
    if (!result) return;
    this._render(result.body);
  }

  _render(data) {
    this._setTenant(data.tenant);
    const rows = Array.isArray(data.rows) ? data.rows : [];
    const columns = Array.isArray(data.columns) ? data.columns : [];
    const frag = document.createDocumentFragment();
    frag.append(this._header(data.title || "", data.tenant));
    // Display names of coded values (region "emea" -> "EMEA"); the codes stay in data-* attributes.
    const labels = data.labels && typeof data.labels === "object" ? data.labels : {};
    const shown = (col, v) => (labels[col] && Object.hasOwn(labels[col], v) ? labels[col][v] : v);
    frag.append(this._chart(data.chart, shown));
    const table = el("table", { class: "tc-table" });
    const head = el("tr");
    for (const c of columns) head.append(el("th", { scope: "col" }, c));
    table.append(el("thead"));
    table.tHead.append(head);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr", { "data-row-id": row.id });
      for (const c of columns) {
        const v = row[c];
        tr.append(el("td", { "data-col": c, class: typeof v === "number" ? "tc-num" : "" }, fmt(shown(c, v))));
      }
      body.append(tr);
    }
    table.append(body);
    frag.append(table);
    this.replaceChildren(frag);
    this.setAttribute("data-row-count", String(rows.length));
    this.setAttribute("data-source-row-count", String(data.source_row_count ?? ""));
    this.setAttribute("data-state", "ready");
    this._emit("toucan:ready", { tenant: data.tenant, rowCount: rows.length, component: this.localName });
  }

  _chart(chart, shown = (col, v) => v) {
    const points = chart && Array.isArray(chart.points) ? chart.points : [];
    const width = 600, height = 160, pad = 18;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "tc-chart");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `${chart ? chart.value : "value"} by ${chart ? chart.label : "label"}`);
    const max = Math.max(1, ...points.map((p) => Number(p.value) || 0));
    const slot = points.length ? width / points.length : width;
    points.forEach((p, i) => {
      const h = ((Number(p.value) || 0) / max) * (height - 2 * pad);
      const rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("x", String(i * slot + slot * 0.15));
      rect.setAttribute("y", String(height - pad - h));
      rect.setAttribute("width", String(slot * 0.7));
      rect.setAttribute("height", String(h));
      rect.setAttribute("data-label", String(p.label));
      rect.setAttribute("data-value", String(p.value));
      const title = document.createElementNS(SVG_NS, "title");
      const name = String(shown(chart.label, p.label));
      title.textContent = `${name}: ${fmt(p.value)}`;
      rect.append(title);
      const label = document.createElementNS(SVG_NS, "text");
      label.setAttribute("x", String(i * slot + slot / 2));
      label.setAttribute("y", String(height - 4));
      label.setAttribute("text-anchor", "middle");
      label.textContent = name;
      svg.append(rect, label);
    });
    return svg;
  }
}

class TcAiAssistant extends ToucanElement {
  static get observedAttributes() {
    return ["auth-token", "server-url"];
  }

  constructor() {
    super();
    this._forbiddenState = "forbidden";
    this._answers = [];
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this._connected) return;
    this.refresh();
  }

  async refresh() {
    if (this.authToken && this.authToken === this._deadToken) return; // no 401 loop
    this.setAttribute("data-state", "loading");
    const result = await this._call("/v1/assistant");
    if (!result) return;
    const tenantId = result.body.tenant ? result.body.tenant.id : null;
    if (this._tenant && this._tenant.id !== tenantId) this._answers = []; // another tenant's answers go
    this._setTenant(result.body.tenant);
    this._tenant = result.body.tenant;
    this._suggestions = result.body.suggestions || [];
    this._renderUi();
    this.setAttribute("data-state", "ready");
    this._emit("toucan:ready", { tenant: result.body.tenant, rowCount: 0, component: this.localName });
  }

  _renderUi() {
    const frag = document.createDocumentFragment();
    frag.append(this._header("Ask about your data", this._tenant));
    const form = el("form", { class: "tc-form" });
    const input = el("input", { name: "question", type: "text", placeholder: "e.g. What are my total sales?", "aria-label": "Question" });
    form.append(input, el("button", { type: "submit" }, "Ask"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = input.value.trim();
      if (q) this.ask(q);
    });
    const suggestions = el("div", { class: "tc-suggestions" });
    for (const s of this._suggestions || []) {
      const b = el("button", { type: "button" }, s);
      b.addEventListener("click", () => this.ask(s));
      suggestions.append(b);
    }
    const list = el("ol", { class: "tc-answers" });
    for (const a of this._answers) list.append(this._answerItem(a));
    frag.append(form, suggestions, list);
    this.replaceChildren(frag);
  }

  _answerItem(a) {
    const li = el("li", { "data-kind": a.kind });
    li.append(el("div", { class: "tc-question" }, a.question));
    li.append(el("div", { class: "tc-answer" }, a.answer));
    return li;
  }

  // Public: ask a question; resolves to the answer object, or null on error.
  async ask(question) {
    this.setAttribute("data-state", "asking");
    const result = await this._call("/v1/assistant/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question }),
    });
    if (!result) return null;
    const answer = { question, ...result.body };
    this._answers.push(answer);
    this._renderUi();
    this.setAttribute("data-answer-count", String(this._answers.length));
    this.setAttribute("data-state", "ready");
    this._emit("toucan:answer", { kind: answer.kind, answer: answer.answer, component: this.localName });
    return answer;
  }
}

if (!customElements.get("tc-dashboard")) customElements.define("tc-dashboard", TcDashboard);
if (!customElements.get("tc-ai-assistant")) customElements.define("tc-ai-assistant", TcAiAssistant);

// ---------------------------------------------------------------------------
// <tc-result-renderer>: draws the `visualizations` of an MCP answer (toucan-mcp-v1).
// The data comes in a <script type="application/json"> child ({"visualizations": [...]},
// see docs/wire.md); it is read with textContent and drawn with DOM text nodes only.
const RESULT_STYLE = `
tc-result-renderer { display: block; font: 14px/1.4 system-ui, sans-serif; margin: 8px 0; }
tc-result-renderer .tc-viz { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 12px; margin: 6px 0; }
tc-result-renderer .tc-kpi { display: flex; gap: 24px; }
tc-result-renderer .tc-kpi-value { font-size: 22px; font-weight: 600; }
`;
let resultStyleInstalled = false;

class TcResultRenderer extends HTMLElement {
  connectedCallback() {
    installStyle();
    if (!resultStyleInstalled) {
      resultStyleInstalled = true;
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(RESULT_STYLE);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      } catch (_) { /* unstyled */ }
    }
    // Parsed children may not be there yet when the element is upgraded mid-parse.
    if (this.querySelector('script[type="application/json"]')) this.render();
    else queueMicrotask(() => this.render());
  }

  render() {
    const source = this.querySelector('script[type="application/json"]');
    let visualizations = [];
    try {
      const data = JSON.parse(source ? source.textContent : "{}");
      visualizations = Array.isArray(data.visualizations) ? data.visualizations : [];
    } catch (_) {
      this.setAttribute("data-state", "error");
      return;
    }
    const frag = document.createDocumentFragment();
    if (source) frag.append(source);
    for (const viz of visualizations) frag.append(this._figure(viz || {}));
    this.replaceChildren(frag);
    this.setAttribute("data-visualization-count", String(visualizations.length));
    this.setAttribute("data-state", "ready");
  }

  _figure(viz) {
    const figure = el("figure", { class: "tc-viz", "data-type": String(viz.type || "table") });
    figure.append(el("figcaption", { class: "tc-title" }, viz.title || ""));
    const columns = Array.isArray(viz.columns) ? viz.columns : [];
    const rows = Array.isArray(viz.rows) ? viz.rows.filter(Array.isArray) : [];
    if (viz.type === "kpi" && rows.length) {
      const kpi = el("div", { class: "tc-kpi" });
      columns.forEach((c, i) => {
        const cell = el("div", { "data-col": c });
        cell.append(el("div", { class: "tc-kpi-value" }, fmt(rows[0][i])), el("div", {}, c));
        kpi.append(cell);
      });
      figure.append(kpi);
      return figure;
    }
    if (viz.type === "bar") figure.append(this._bars(rows));
    const table = el("table", { class: "tc-table" });
    const head = el("tr");
    for (const c of columns) head.append(el("th", { scope: "col" }, c));
    table.append(el("thead"));
    table.tHead.append(head);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      row.forEach((v) => tr.append(el("td", { class: typeof v === "number" ? "tc-num" : "" }, fmt(v))));
      body.append(tr);
    }
    table.append(body);
    figure.append(table);
    return figure;
  }

  _bars(rows) {
    const width = 600, height = 140, pad = 16;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "tc-chart");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    const max = Math.max(1, ...rows.map((r) => Number(r[1]) || 0));
    const slot = rows.length ? width / rows.length : width;
    rows.forEach((r, i) => {
      const h = ((Number(r[1]) || 0) / max) * (height - 2 * pad);
      const rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("x", String(i * slot + slot * 0.15));
      rect.setAttribute("y", String(height - pad - h));
      rect.setAttribute("width", String(slot * 0.7));
      rect.setAttribute("height", String(h));
      rect.setAttribute("data-label", String(r[0]));
      rect.setAttribute("data-value", String(r[1]));
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = `${r[0]}: ${fmt(r[1])}`;
      rect.append(title);
      svg.append(rect);
    });
    return svg;
  }
}

if (!customElements.get("tc-result-renderer")) customElements.define("tc-result-renderer", TcResultRenderer);
