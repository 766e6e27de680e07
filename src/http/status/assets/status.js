// switchboard status page: refreshes the live part from /status/live every few seconds.
// The server renders and escapes everything; this only swaps the fragment in.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var every = (Number(live.dataset.refresh) || 2) * 1000;
  function tick() {
    fetch("/status/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          // The session ended (signed out elsewhere, token removed): sign in again.
          window.location.assign("/status");
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          document.body.dataset.refreshed = String(Date.now());
        }
      })
      // The daemon restarting: keep the last view and try again.
      .catch(function () {})
      .then(function () {
        window.setTimeout(tick, every);
      });
  }
  window.setTimeout(tick, every);
})();
