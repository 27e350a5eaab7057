// churnguard dashboard: selects marked data-autosubmit submit their form on change (no inline handlers: CSP).
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
})();
