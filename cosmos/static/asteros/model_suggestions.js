/* The model field's suggestions follow the chosen provider: the input carries every provider's
   list (data-model-suggestions, from MODEL_SUGGESTIONS); this swaps its <datalist>. */
(function () {
  "use strict";

  function setUp() {
    document.querySelectorAll("input[data-model-suggestions]").forEach(function (input) {
      var suggestions = JSON.parse(input.dataset.modelSuggestions);
      var list = document.getElementById(input.getAttribute("list"));
      var form = input.form;
      var provider = form && form.querySelector('[name="' + input.dataset.providerField + '"]');
      if (!list || !provider) return;
      function fill() {
        var names = suggestions[provider.value];
        if (!names) {  // no provider here (an agent using its template's): every suggestion
          names = [];
          Object.keys(suggestions).forEach(function (key) { names = names.concat(suggestions[key]); });
        }
        list.replaceChildren.apply(list, names.map(function (name) {
          var option = document.createElement("option");
          option.value = name;
          return option;
        }));
      }
      provider.addEventListener("change", fill);
      fill();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
