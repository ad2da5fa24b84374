// The only script on the pages: a print button, shown where printing is possible.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  // After a form is refused, or a decision is shown, move focus there for screen readers.
  var target = document.getElementById("form-errors") || document.getElementById("result");
  if (target) { target.focus(); }
});
