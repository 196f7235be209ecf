// Keyboard shortcuts of the console. A static file (the Content-Security-Policy allows no inline script).
// Buttons and links carry data-key="x" (pressing x clicks them); fields carry data-key-focus="x".
(function () {
  "use strict";
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tr.row")); }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var current = all.findIndex(function (r) { return r.classList.contains("selected"); });
    var next = Math.max(0, Math.min(all.length - 1, current + step));
    if (current >= 0) { all[current].classList.remove("selected"); }
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "j") { move(1); event.preventDefault(); return; }
    if (key === "k") { move(-1); event.preventDefault(); return; }
    if (key === "Enter" || key === "o") {
      var selected = document.querySelector("table.queue tr.row.selected a");
      if (selected) { selected.click(); event.preventDefault(); }
      return;
    }
    var field = document.querySelector('[data-key-focus="' + CSS.escape(key) + '"]');
    if (field) { field.focus(); event.preventDefault(); return; }
    var button = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (button) { button.click(); event.preventDefault(); }
  });
})();
