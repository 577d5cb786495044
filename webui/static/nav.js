// provbox admin: the menu's extras. The menu is <details> elements and
// works without this file; here Escape closes an open menu or dropdown (and
// puts the focus back on its summary), and a click or focus outside closes
// it, as a menu does.
(function () {
  "use strict";
  var menus = document.querySelectorAll("header.top details");
  if (!menus.length) { return; }
  function closeAll(except) {
    menus.forEach(function (d) {
      if (d.open && !d.contains(except)) { d.open = false; }
    });
  }
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") { return; }
    var open = Array.prototype.filter.call(menus, function (d) { return d.open && d.contains(document.activeElement); });
    var inner = open[open.length - 1];
    if (inner) {
      inner.open = false;
      inner.querySelector("summary").focus();
    }
  });
  document.addEventListener("click", function (e) { closeAll(e.target); });
  document.addEventListener("focusin", function (e) { closeAll(e.target); });
})();
