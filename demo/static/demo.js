// Toucan analytics portal: the token-expiry indicator and the "session ended" banner.
// Fed only by flask-toucan's refresh-script events (docs/embedding.md):
//   toucan:token-refreshed {kind, expires_in, source}
//   toucan:refresh-failed  {kind, status, retry_in, expired}
//   toucan:session-expired {kind, status}
// Counts on the monotonic clock, like the refresh script; never reads a token.

const indicator = document.getElementById("token-indicator");
const grantPanel = document.getElementById("grant");
const grantExpires = grantPanel && grantPanel.querySelector("[data-grant-expires]");
const text = indicator && indicator.querySelector(".token-text");
const banner = document.getElementById("session-ended");

let expiresAt = null; // performance.now() when the freshest token expires
let refreshes = 0;
let state = "waiting";
let failure = null;

function setState(next) {
  state = next;
  if (indicator) indicator.dataset.state = next;
}

function fmt(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}:${String(s % 60).padStart(2, "0")}` : `${s}s`;
}

function render() {
  if (!text) return;
  if (state === "ended") {
    text.textContent = "Session ended";
    return;
  }
  if (expiresAt === null) {
    text.textContent = "No token on this page";
    return;
  }
  const left = (expiresAt - performance.now()) / 1000;
  const count = refreshes ? ` · refreshed ${refreshes}×` : "";
  if (failure) {
    text.textContent = left > 0
      ? `Token ${fmt(left)} left · refresh failed, retrying in ${fmt(failure.retry_in)}`
      : `Token expired · retrying in ${fmt(failure.retry_in)}`;
    return;
  }
  if (state === "refreshed" || state === "fresh" || state === "expiring") {
    setState(left < 10 ? "expiring" : state === "refreshed" ? "refreshed" : "fresh");
  }
  text.textContent = left > 0 ? `Token valid ${fmt(left)}${count}` : `Token expired${count}`;
}

// The page's own tokens: the kit writes how long they had left when the page was built.
const components = document.querySelectorAll("[data-toucan-expires-in]");
if (components.length) {
  const seconds = Math.min(...Array.from(components, (el) => parseFloat(el.dataset.toucanExpiresIn) || 0));
  const arrived = (performance.getEntriesByType("navigation")[0] || {}).responseStart || 0;
  expiresAt = arrived + seconds * 1000;
  setState("fresh");
} else {
  setState(document.querySelector("[data-toucan-placeholder]") ? "none" : "waiting");
}

document.addEventListener("toucan:token-refreshed", (event) => {
  const detail = event.detail || {};
  if (typeof detail.expires_in !== "number") return;
  const at = performance.now() + detail.expires_in * 1000;
  // Several scopes may refresh: show the one that expires first.
  expiresAt = expiresAt === null || state === "failed" || at > expiresAt ? at : expiresAt;
  refreshes += 1;
  failure = null;
  if (indicator) indicator.dataset.refreshes = String(refreshes);
  setState("refreshed");
  render();
  setTimeout(() => state === "refreshed" && (setState("fresh"), render()), 1500);
});

// The grant panel's "expires at": the server wrote the first token's expiry; a
// background refresh of the panel's kind brings a new one. Shown as wall-clock
// UTC (what the server wrote), computed from the relative expires_in.
function utcTime(ms) {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

document.addEventListener("toucan:token-refreshed", (event) => {
  const detail = event.detail || {};
  if (!grantExpires || typeof detail.expires_in !== "number") return;
  if (detail.kind !== grantPanel.dataset.kind) return;
  grantExpires.textContent = utcTime(Date.now() + detail.expires_in * 1000);
  grantPanel.dataset.refreshes = String((parseInt(grantPanel.dataset.refreshes, 10) || 0) + 1);
});

document.addEventListener("toucan:refresh-failed", (event) => {
  failure = event.detail || { retry_in: 0 };
  setState("failed");
  render();
});

document.addEventListener("toucan:session-expired", () => {
  setState("ended");
  expiresAt = null;
  document.body.dataset.session = "ended";
  if (banner) banner.hidden = false;
  render();
});

render();
setInterval(render, 1000);
