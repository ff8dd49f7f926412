// Progressive enhancement only: every page works without this file.
// Forms with data-confirm ask before they are sent (deleting an issue).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
// "/" moves the focus to the search box, as in Sentry.
document.addEventListener("keydown", function (event) {
  var search = document.getElementById("query");
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  if (event.key === "/" && search && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    search.focus();
  }
});
