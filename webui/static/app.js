// provbox admin: a little vanilla JS. Pages work without it; it adds live
// sync badges, delete confirmations, revealing masked secrets and drag and
// drop in the key editor.
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
          el.textContent = s.state === "fetched" && !s.confirms ? "fetched (phone does not confirm)" : s.state;
          el.className = "badge " + s.state;
          var detail = document.querySelector("[data-sync-detail='" + el.dataset.syncMac + "']");
          if (detail) {
            detail.textContent = s.last_notify_result ? "last trigger: " + s.last_notify_result : "";
          }
          var reg = document.querySelector("[data-registration-mac='" + el.dataset.syncMac + "']");
          if (reg && s.registration && Object.keys(s.registration).length) {
            // Keep the extension each account showed ("account 1 (1001)").
            var users = {};
            reg.querySelectorAll("[data-account]").forEach(function (b) { users[b.dataset.account] = b.dataset.user; });
            reg.textContent = "";
            Object.keys(s.registration).sort(function (a, b) { return a - b; }).forEach(function (k) {
              var b = document.createElement("span");
              b.className = "badge reg-" + s.registration[k].state;
              b.dataset.account = k;
              b.dataset.user = users[k] || "";
              b.textContent = "account " + k + (users[k] ? " (" + users[k] + ")" : "") + ": " + s.registration[k].state;
              reg.appendChild(b);
              reg.appendChild(document.createTextNode(" "));
            });
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
  // The timeline of a phone's changes, redrawn from the API.
  var timeline = document.querySelector("[data-timeline-mac]");
  function when(t) {
    if (!t) { return "—"; }
    var d = new Date(t), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function refreshTimeline() {
    fetch("/api/v1/phones/" + timeline.dataset.timelineMac + "/timeline", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (list) {
        if (!list || !list.length) { return; }
        var body = timeline.querySelector("tbody");
        body.textContent = "";
        list.forEach(function (c) {
          var tr = document.createElement("tr");
          [when(c.changed_at), when(c.triggered_at), when(c.fetched_at), when(c.applied_at), when(c.registered_at)].forEach(function (v, i) {
            var td = document.createElement("td");
            td.textContent = v;
            if (i === 1 && c.trigger) {
              var hint = document.createElement("span");
              hint.className = "hint";
              hint.textContent = c.trigger;
              td.appendChild(document.createElement("br"));
              td.appendChild(hint);
            }
            tr.appendChild(td);
          });
          var td = document.createElement("td");
          if (c.outcome) {
            var b = document.createElement("span");
            b.className = "badge " + c.outcome;
            b.textContent = c.outcome;
            td.appendChild(b);
          }
          tr.appendChild(td);
          body.appendChild(tr);
        });
      })
      .catch(function () {});
  }
  if (badges.length) { setInterval(refresh, 2000); }
  if (timeline) { setInterval(refreshTimeline, 2000); }
  // Confirm before destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
  // Key editor: every position is a plain <select>; dragging a key onto
  // another position swaps the two selects' values (a move when the target
  // is empty), dropping it on the clear zone empties its position. Nothing
  // is saved until the form is.
  var keyboard = document.querySelector("form[data-keyboard]");
  if (keyboard) {
    var dragged = null;
    var shown = function (slot) {
      var sel = slot.querySelector("select");
      var opt = sel.options[sel.selectedIndex];
      var label = opt && opt.value ? (opt.dataset.label || "") : "";
      var n = parseInt(slot.dataset.chars, 10) || 0;
      var screen = keyboard.querySelector("[data-shown-for='" + slot.dataset.slot + "']");
      if (screen) {
        screen.textContent = n > 0 && label.length > n ? label.slice(0, n).replace(/\s+$/, "") + "\u2026" : label;
      }
      slot.classList.toggle("used", sel.value !== "");
    };
    var endDrag = function () {
      keyboard.querySelectorAll(".over, .dragging").forEach(function (el) { el.classList.remove("over", "dragging"); });
      dragged = null;
    };
    var target = function (el, onDrop) {
      el.addEventListener("dragover", function (e) {
        if (dragged && dragged !== el) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; el.classList.add("over"); }
      });
      el.addEventListener("dragleave", function () { el.classList.remove("over"); });
      el.addEventListener("drop", function (e) {
        e.preventDefault();
        if (dragged && dragged !== el) { onDrop(dragged); }
        endDrag();
      });
    };
    keyboard.querySelectorAll(".slot").forEach(function (slot) {
      slot.draggable = true;
      slot.querySelector("select").addEventListener("change", function () { shown(slot); });
      slot.addEventListener("dragstart", function (e) {
        dragged = slot;
        slot.classList.add("dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", slot.dataset.slot);
      });
      slot.addEventListener("dragend", endDrag);
      target(slot, function (from) {
        var a = from.querySelector("select"), b = slot.querySelector("select"), v = a.value;
        a.value = b.value;
        b.value = v;
        shown(from);
        shown(slot);
      });
    });
    var clear = keyboard.querySelector("[data-clear]");
    if (clear) {
      clear.hidden = false;
      target(clear, function (from) {
        from.querySelector("select").value = "";
        shown(from);
      });
    }
  }
  // Bulk actions on the Phones list: "tick all", how many are ticked, and
  // only the field the chosen action needs.
  var bulk = document.querySelector("form[data-bulk]");
  if (bulk) {
    var boxes = bulk.querySelectorAll("input[name=mac]");
    var all = bulk.querySelector("[data-select-all]");
    var count = bulk.querySelector("[data-bulk-count]");
    var action = bulk.querySelector("select[name=action]");
    var ticked = function () {
      var n = 0;
      boxes.forEach(function (b) { if (b.checked) { n++; } });
      if (count) { count.textContent = n === 1 ? "(1 ticked)" : "(" + n + " ticked)"; }
      if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
    };
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        ticked();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", ticked); });
    var showFor = function () {
      bulk.querySelectorAll("[data-bulk-for]").forEach(function (el) {
        el.hidden = !action || el.dataset.bulkFor !== action.value;
      });
    };
    if (action) { action.addEventListener("change", showFor); showFor(); }
    ticked();
  }
  // A form with data-dirty-warn asks before the page is left with unsaved
  // changes (the phone's one form: device settings and line keys). What
  // counts is the form's data, so a key moved by drag and drop counts too.
  document.querySelectorAll("form[data-dirty-warn]").forEach(function (form) {
    var state = function () { return new URLSearchParams(new FormData(form)).toString(); };
    var saved = state(), leaving = false;
    form.addEventListener("submit", function () { leaving = true; });
    window.addEventListener("beforeunload", function (e) {
      if (!leaving && state() !== saved) {
        e.preventDefault();
        e.returnValue = "";
      }
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
