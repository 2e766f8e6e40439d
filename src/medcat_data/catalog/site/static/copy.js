// medcat catalog dataset page: the copy buttons of the BibTeX and the load snippets
// (shown only when JavaScript runs); each reports in the element its data-status names.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-status"));
    if (!target) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent;
      function done(ok) { if (status) { status.textContent = ok ? "Copied." : "Select the text and copy it."; } }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallback(target)); });
      } else {
        done(fallback(target));
      }
    });
  });

  function fallback(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { return document.execCommand("copy"); } catch (err) { return false; }
  }
})();
