// medcat catalog index: client-side filters and search over the rows already in the HTML.
// Without JavaScript the form stays hidden and the full table is shown.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("datasets");
  if (!form || !table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var search = document.getElementById("search");
  var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-attribute]"));
  var shown = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");

  function words(text) {
    return text.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  function matches(row) {
    for (var i = 0; i < selects.length; i++) {
      var wanted = selects[i].value;
      if (!wanted) { continue; }
      var attribute = selects[i].getAttribute("data-attribute");
      var value = row.getAttribute("data-" + attribute) || "";
      // license values may hold spaces; the other attributes are space-separated lists
      var ok = attribute === "license" ? value === wanted : value.split(" ").indexOf(wanted) >= 0;
      if (!ok) { return false; }
    }
    var haystack = row.getAttribute("data-search") || "";
    return words(search.value).every(function (w) { return haystack.indexOf(w) >= 0; });
  }

  function state() {
    var parts = [];
    if (search.value) { parts.push("q=" + encodeURIComponent(search.value)); }
    selects.forEach(function (s) {
      if (s.value) { parts.push(s.name + "=" + encodeURIComponent(s.value)); }
    });
    return parts.join("&");
  }

  function apply() {
    var count = 0;
    rows.forEach(function (row) {
      var keep = matches(row);
      row.hidden = !keep;
      if (keep) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " shown";
    noMatch.hidden = count > 0;
    var hash = state();
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", hash ? "#" + hash : window.location.pathname);
    }
  }

  function restore() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) { return; }
    hash.split("&").forEach(function (pair) {
      var kv = pair.split("=");
      var value = decodeURIComponent(kv[1] || "");
      if (kv[0] === "q") { search.value = value; return; }
      selects.forEach(function (s) { if (s.name === kv[0]) { s.value = value; } });
    });
  }

  form.hidden = false;
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  restore();
  apply();
})();
