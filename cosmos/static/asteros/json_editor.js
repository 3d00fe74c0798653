/* The admin's JSON editors: a syntax error is shown under the box as it is typed, and a form
   holding one is not sent (the server refuses it too, with the line and column). */
(function () {
  "use strict";

  function check(box) {
    var note = box.parentNode.querySelector(".asteros-json-error");
    var problem = "";
    if (box.value.trim()) {
      try { JSON.parse(box.value); } catch (error) { problem = "Not valid JSON yet: " + error.message; }
    }
    box.setCustomValidity(problem);
    if (note) {
      note.textContent = problem;
      note.style.display = problem ? "" : "none";
    }
    return !problem;
  }

  function setUp() {
    var boxes = document.querySelectorAll("textarea[data-asteros-json]");
    boxes.forEach(function (box) {
      box.addEventListener("input", function () { check(box); });
      check(box);
    });
    document.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var bad = Array.prototype.filter.call(form.querySelectorAll("textarea[data-asteros-json]"), function (box) {
          return !check(box);
        });
        if (bad.length) {
          event.preventDefault();
          bad[0].focus();
        }
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
