// Progressive enhancement for the portal: every page works without it.
(function () {
  "use strict";

  // Crockford base 32 with a Luhn mod 32 check character, as rems/core/identifiers.py.
  var ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  var LENGTH = 12;

  function normalise(text) {
    return text.replace(/[\s-]/g, "").toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
  }

  function checkCharacter(payload) {
    var n = ALPHABET.length, factor = 2, total = 0;
    for (var i = payload.length - 1; i >= 0; i--) {
      var addend = factor * ALPHABET.indexOf(payload.charAt(i));
      factor = factor === 2 ? 1 : 2;
      total += Math.floor(addend / n) + (addend % n);
    }
    return ALPHABET.charAt((n - (total % n)) % n);
  }

  // null while the number is incomplete; "" when it is well formed; otherwise what is wrong.
  function numberProblem(text, prefix, kind) {
    var value = normalise(text);
    if (value.length === 0) { return null; }
    if (value.charAt(0) !== prefix) { return "A " + kind + " number starts with " + prefix + "."; }
    for (var i = 0; i < value.length; i++) {
      if (ALPHABET.indexOf(value.charAt(i)) < 0) { return "A " + kind + " number cannot contain " + value.charAt(i) + "."; }
    }
    if (value.length < LENGTH) { return null; }
    if (value.length > LENGTH) { return "A " + kind + " number has " + LENGTH + " characters; this has " + value.length + "."; }
    if (checkCharacter(value.slice(0, -1)) !== value.charAt(LENGTH - 1)) {
      return "The check character does not match: there is a typing error in this number.";
    }
    return "";
  }

  // The quantity follows the product chosen: one package of it, unless the quantity was typed by hand.
  function watchPackageSize(quantity) {
    var sizes = JSON.parse(quantity.getAttribute("data-package-sizes") || "{}");
    var controls = quantity.form ? quantity.form.querySelectorAll("[name$='ndc']") : [];
    // A quantity the page came with is the product's package (a new form), or what was typed (a form sent back).
    var lastSet = quantity.hasAttribute("data-quantity-preset") ? quantity.value : "";
    function chosen() {
      for (var i = 0; i < controls.length; i++) {
        var c = controls[i];
        if ((c.type === "radio" && c.checked) || c.tagName === "SELECT") { return c.value; }
      }
      return "";
    }
    function update() {
      var size = sizes[chosen()];
      if (size && (quantity.value === "" || quantity.value === String(lastSet))) {
        quantity.value = size;
        lastSet = size;
      }
    }
    Array.prototype.forEach.call(controls, function (c) { c.addEventListener("change", update); });
  }

  // At the counter, the product is chosen from the authorization once its number is well formed.
  function productFromNumber(input, number) {
    var form = input.form;
    var url = form && form.getAttribute("data-product-lookup");
    var select = form && form.querySelector("select[data-product-from-number]");
    if (!url || !select || !window.fetch) { return; }
    window.fetch(url + "?number=" + encodeURIComponent(number), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { ndc: "" }; })
      .then(function (found) {
        if (!found.ndc || select.value === found.ndc) { return; }
        select.value = found.ndc;
        select.dispatchEvent(new Event("change"));
        var live = document.getElementById(input.id + "_live");
        if (live && select.selectedIndex > 0) {
          live.textContent += " Product from the authorization: " + select.options[select.selectedIndex].text + ".";
        }
      })
      .catch(function () { /* the pharmacist chooses the product */ });
  }

  function watchNumber(input) {
    var live = document.getElementById(input.id + "_live");
    var prefix = input.getAttribute("data-number-prefix");
    var kind = input.getAttribute("data-number-kind");
    var looked = normalise(input.value);  // a number the page came with was looked up when it was typed
    function update() {
      var problem = numberProblem(input.value, prefix, kind);
      var length = normalise(input.value).length;
      if (problem === null) {
        input.removeAttribute("aria-invalid");
        input.classList.remove("number-ok", "number-bad");
        if (live) { live.textContent = length ? length + " of " + LENGTH + " characters" : ""; live.className = "live"; }
      } else if (problem === "") {
        input.removeAttribute("aria-invalid");
        input.classList.add("number-ok"); input.classList.remove("number-bad");
        if (live) { live.textContent = "✓ Well-formed number: the check character matches."; live.className = "live live-ok"; }
        var value = normalise(input.value);
        if (value !== looked) { looked = value; productFromNumber(input, value); }
      } else {
        input.setAttribute("aria-invalid", "true");
        input.classList.add("number-bad"); input.classList.remove("number-ok");
        if (live) { live.textContent = "✕ " + problem; live.className = "live live-bad"; }
      }
    }
    input.addEventListener("input", update);
    // A number the server refused comes back with its error: the same words are not said twice.
    if (!document.getElementById(input.id + "_error")) { update(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var zone = document.querySelector("[data-time-zone]");
    if (zone && window.Intl) {
      try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone.value = ""; }
    }
    Array.prototype.forEach.call(document.querySelectorAll("input[data-package-sizes]"), watchPackageSize);
    Array.prototype.forEach.call(document.querySelectorAll("input[data-number-prefix]"), watchNumber);
    // Each error message is read with its field.
    Array.prototype.forEach.call(document.querySelectorAll(".field .error[id]"), function (error) {
      var control = error.closest(".field").querySelector("input, select, textarea");
      if (!control) { return; }
      var ids = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (ids.indexOf(error.id) < 0) { ids.push(error.id); }
      control.setAttribute("aria-describedby", ids.join(" "));
      control.setAttribute("aria-invalid", "true");
    });
    // A decision or a refusal just shown gets the focus, so that a screen reader reads it first; otherwise the
    // first field with an error.
    var focus = document.querySelector("[data-focus]") ||
      document.querySelector(".field-error input, .field-error select, .field-error textarea");
    if (focus) { focus.focus(); }
    // One click, one request: a second click while the first is on its way would ask twice.
    Array.prototype.forEach.call(document.querySelectorAll("form[data-disable-on-submit]"), function (form) {
      form.addEventListener("submit", function () {
        Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (b) {
          window.setTimeout(function () { b.disabled = true; }, 0);
        });
      });
    });
  });
})();
