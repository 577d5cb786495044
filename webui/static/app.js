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
          // The ready checks: the list of what the phone still needs.
          var box = document.querySelector("[data-problems-mac='" + el.dataset.syncMac + "']");
          var list = box && box.querySelector("ul");
          if (list && s.problems) {
            list.textContent = "";
            s.problems.forEach(function (p) {
              var li = document.createElement("li");
              li.textContent = p;
              list.appendChild(li);
            });
            box.hidden = s.problems.length === 0;
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
  // Reveal masked secrets: a button with data-reveal="<masked id> <plain id>"
  // swaps the two elements; its text says which one is shown.
  document.querySelectorAll("button[data-reveal]").forEach(function (b) {
    var ids = b.dataset.reveal.split(" ");
    var masked = document.getElementById(ids[0]);
    var plain = document.getElementById(ids[1]);
    var label = b.textContent;
    b.addEventListener("click", function () {
      var show = plain.hidden;
      plain.hidden = !show; masked.hidden = show;
      b.textContent = show ? label.replace("Reveal", "Hide") : label;
    });
  });
})();
