// opsmgr page behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";
  // A page restored from the back/forward cache must be fetched again, so that after
  // sign-out the Back button shows the sign-in page and never cached patient data.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    // Move keyboard focus to the first field with an error so it is announced.
    var invalid = document.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  });
})();
