// The one script of the web pages, and optional: every page works without it
// (SPEC §7). On /tokens it adds a Copy button for the one-time secret, "select
// all" for the remove checkboxes, and greys out custom scopes when an API set is chosen.
(function () {
  "use strict";
  var button = document.getElementById("copy-button");
  var field = document.getElementById("secret-token");
  if (button && field) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          document.execCommand("copy"); done();
        });
      } else {
        document.execCommand("copy"); done();
      }
    });
  }
  var all = document.getElementById("select-all");
  if (all) {
    all.hidden = false;
    all.addEventListener("change", function () {
      var boxes = document.querySelectorAll("input[name=ids]");
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
    });
  }
  var apiSet = document.getElementById("api_set");
  var custom = document.getElementById("custom-scopes");
  if (apiSet && custom) {
    var sync = function () { custom.disabled = apiSet.value !== ""; };
    apiSet.addEventListener("change", sync);
    sync();
  }
})();
