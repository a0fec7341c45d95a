// flask-toucan sandbox: a stand-in for a Toucan 3 instance's /scripts/embedLauncher.js.
// Classic script (not a module), loaded as
//   <div><script async src="{instance}/scripts/embedLauncher.js?id=...&token=..."></script></div>
// The server appends one call, window.__toucanSandboxLaunch(document.currentScript, launch),
// where launch is {frame: URL of /embed.html with the same query} once it checked the token,
// or {error, message} when it refused it. The embed is drawn in the script's parent element:
// an <iframe> (what the data call runs in), or the refusal as text. No inline style: the
// frame is sized with attributes, so a host page under a strict CSP needs only frame-src.
window.__toucanSandboxLaunch = window.__toucanSandboxLaunch || function launch(script, outcome) {
  const host = script && script.parentElement;
  if (!host) return;
  if (outcome && typeof outcome.frame === "string") {
    const frame = document.createElement("iframe");
    frame.setAttribute("src", outcome.frame);
    frame.setAttribute("title", "Toucan embed");
    frame.setAttribute("width", "100%");
    frame.setAttribute("height", "100%");
    frame.setAttribute("frameborder", "0");
    frame.setAttribute("data-toucan-launched", "");
    script.after(frame);
    return;
  }
  const box = document.createElement("p");
  box.setAttribute("role", "alert");
  box.setAttribute("class", "tc-embed-error");
  box.setAttribute("data-state", "error");
  box.setAttribute("data-error", String((outcome && outcome.error) || "invalid_request"));
  box.textContent = String((outcome && outcome.message) || "This embed cannot be shown.");
  script.after(box);
};
