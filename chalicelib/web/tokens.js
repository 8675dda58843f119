// Progressive enhancement for /tokens: a Copy button for the one-time secret,
// and "select all" for the remove checkboxes. Everything works without it.
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
