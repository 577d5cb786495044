// provbox admin: a little vanilla JS. Pages work without it; it adds live
// sync badges, delete confirmations and revealing masked secrets.
(function () {
  "use strict";
  // Live sync state: elements with data-sync-mac poll the API.
  var badges = document.querySelectorAll("[data-sync-mac]");
  function refresh() {
    badges.forEach(function (el) {
      fetch("/api/v1/phones/" + el.dataset.syncMac + "/sync", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { return; }
          el.textContent = s.state;
          el.className = "badge " + s.state;
          var detail = document.querySelector("[data-sync-detail='" + el.dataset.syncMac + "']");
          if (detail) {
            detail.textContent = s.last_notify_result ? "last NOTIFY: " + s.last_notify_result : "";
          }
        })
        .catch(function () {});
    });
  }
  if (badges.length) { setInterval(refresh, 2000); }
  // Confirm before destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
  // Reveal masked secrets in a config preview.
  var reveal = document.getElementById("reveal-secrets");
  if (reveal) {
    reveal.addEventListener("click", function () {
      var masked = document.getElementById("config-masked");
      var plain = document.getElementById("config-plain");
      var show = plain.hidden;
      plain.hidden = !show; masked.hidden = show;
      reveal.textContent = show ? "Hide secrets" : "Reveal secrets";
    });
  }
})();
