// Search and sort for the dashboard's tables (vanilla, no library; pages work without it).
(function () {
  "use strict";
  function fold(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d")
      .replace(/Đ/g, "D").toLowerCase();
  }
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    input.addEventListener("input", function () {
      var q = fold(input.value.trim());
      document.querySelectorAll(input.dataset.filter).forEach(function (row) {
        row.hidden = q !== "" && fold(row.textContent).indexOf(q) < 0;
      });
    });
  });
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th, col) {
      th.addEventListener("click", function (ev) {
        if (ev.target.tagName === "A") { ev.preventDefault(); }
        var numeric = th.dataset.sort === "num";
        var desc = !th.classList.contains("desc");
        if (th.dataset.sort === "num" && col === 0) { desc = th.classList.contains("asc"); }
        table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(desc ? "desc" : "asc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var vx = numeric ? parseFloat(x.dataset.value) : fold(x.textContent);
          var vy = numeric ? parseFloat(y.dataset.value) : fold(y.textContent);
          var c = vx < vy ? -1 : vx > vy ? 1 : 0;
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
