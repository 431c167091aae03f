// opsmgr page behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";
  // A page restored from the back/forward cache must be fetched again, so that after
  // sign-out the Back button shows the sign-in page and never cached patient data.
  window.addEventListener("pageshow", function (event) {
    document.querySelectorAll("form[data-sending]").forEach(release);
    if (event.persisted) { window.location.reload(); }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("form[data-sending] [aria-disabled='true']")) { event.preventDefault(); return; }
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // A table that scrolls sideways must be reachable from the keyboard (WCAG 2.1.1): make each
  // scrolling wrapper a focusable, named region while (and only while) it scrolls.
  function scrollableTables() {
    document.querySelectorAll(".table-responsive").forEach(function (wrapper) {
      if (wrapper.scrollWidth > wrapper.clientWidth) {
        if (!wrapper.hasAttribute("tabindex")) { wrapper.setAttribute("tabindex", "0"); }
        if (!wrapper.hasAttribute("role")) { wrapper.setAttribute("role", "region"); }
        if (!wrapper.hasAttribute("aria-label")) {
          var caption = wrapper.querySelector("caption");
          wrapper.setAttribute("aria-label", caption ? caption.textContent.trim() : "Table");
        }
      }
    });
  }
  window.addEventListener("resize", scrollableTables);

  document.addEventListener("DOMContentLoaded", function () {
    scrollableTables();
    restoreTyping();
    // Move keyboard focus to the first field with an error so it is announced.
    var invalid = document.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  });

  // Never lose what was typed to an ended sign-in (idle timeout, sign-out in another tab). Before
  // a form posts, ask the server whether the sign-in is still live; if not, keep the typed values
  // in this tab's sessionStorage (never passwords, never the security token), sign in again, and
  // put them back into the same form on the same page. Forms opt out with data-no-keep.
  // Kept per signed-in staff member (body data-staff): a colleague who signs in on the same tablet
  // never gets another person's typing put into their form.
  var KEEP = "opsmgr-typed|";

  function keyFor(form) {
    return KEEP + (document.body.getAttribute("data-staff") || "") + "|" + window.location.pathname + "|" +
      (form.getAttribute("action") || "");
  }

  function keep(form, why) {
    try { sessionStorage.setItem(keyFor(form), JSON.stringify({why: why, values: typedValues(form)})); }
    catch (e) { /* storage off */ }
  }

  function changed(form) {
    return Array.prototype.some.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden" || el.type === "password" || el.type === "submit" || el.type === "button") {
        return false;
      }
      if (el.type === "checkbox" || el.type === "radio") { return el.checked !== el.defaultChecked; }
      if (el.tagName === "SELECT") {
        return Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return el.value !== el.defaultValue;
    });
  }

  // The chair tablet's idle lock (js/tablet_lock.js) calls this just before it locks the screen: every
  // form on the page with something typed into it is kept, and put back after the PIN unlocks the page.
  window.opsmgrKeepTyping = function () {
    document.querySelectorAll("form[method='post']:not([data-no-keep])").forEach(function (form) {
      if (changed(form)) { keep(form, "locked"); }
    });
  };

  function typedValues(form) {
    var values = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.name === "submission_key" || el.type === "password" ||
          el.type === "submit" || el.type === "button" || el.type === "file") { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      values.push([el.name, el.value]);
    });
    return values;
  }

  function restoreTyping() {
    var me = document.body.getAttribute("data-staff");
    if (me) {  // another person's kept typing never stays in this tab once someone else signs in here
      try {
        Object.keys(sessionStorage).forEach(function (key) {
          if (key.indexOf(KEEP) === 0 && key.split("|")[1] !== me) { sessionStorage.removeItem(key); }
        });
      } catch (e) { /* storage off */ }
    }
    var forms = document.querySelectorAll("form[method='post']:not([data-no-keep])");
    Array.prototype.forEach.call(forms, function (form) {
      var raw = null;
      try { raw = sessionStorage.getItem(keyFor(form)); sessionStorage.removeItem(keyFor(form)); } catch (e) { return; }
      if (!raw) { return; }
      var kept = JSON.parse(raw);
      var values = Array.isArray(kept) ? kept : kept.values;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.name === "csrf_token" || el.name === "submission_key" || el.type === "password") { return; }
        var mine = values.filter(function (pair) { return pair[0] === el.name; }).map(function (pair) { return pair[1]; });
        if (el.type === "checkbox" || el.type === "radio") { el.checked = mine.indexOf(el.value) !== -1; }
        else if (mine.length && el.type !== "submit" && el.type !== "button") { el.value = mine[0]; }
      });
      var note = document.createElement("div");
      note.className = "alert alert-warning";
      note.setAttribute("role", "status");
      note.textContent = (kept.why === "locked" ? "The screen locked before this was saved." :
        "You were signed out before this was saved.") + " What you typed has been put back: check it and save again.";
      form.insertBefore(note, form.firstChild);
    });
  }

  // One action per click: a form on its way cannot be sent again until its answer comes. Its submit
  // buttons say so (aria-disabled, the pressed one reads "Saving…"), and are disabled once the browser
  // has read the form, so the pressed button's own name and value still go with it. (The server also
  // answers a repeated submission key with the first answer; this spares the second request.)
  function submitButtons(form) {
    return Array.prototype.filter.call(form.elements, function (el) { return el.type === "submit"; });
  }

  function labelOf(button) { return button.tagName === "INPUT" ? button.value : button.textContent; }

  function setLabel(button, text) {
    if (button.tagName === "INPUT") { button.value = text; } else { button.textContent = text; }
  }

  function hold(form, submitter, leaving) {
    form.setAttribute("data-sending", "yes");
    var pressed = submitter || submitButtons(form)[0];
    submitButtons(form).forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
      if (button === pressed && !button.hasAttribute("data-label")) {
        button.setAttribute("data-label", labelOf(button));
        setLabel(button, "Saving…");
      }
    });
    if (leaving) {
      setTimeout(function () { submitButtons(form).forEach(function (button) { button.disabled = true; }); }, 0);
    }
  }

  function release(form) {
    form.removeAttribute("data-sending");
    submitButtons(form).forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-disabled");
      if (button.hasAttribute("data-label")) {
        setLabel(button, button.getAttribute("data-label"));
        button.removeAttribute("data-label");
      }
    });
  }

  function send(form, submitter) {
    form.removeAttribute("data-sending");
    if (form.requestSubmit) { form.requestSubmit(submitter); } else { hold(form, submitter, true); form.submit(); }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.method !== "post") { return; }
    if (form.hasAttribute("data-sending")) { event.preventDefault(); return; }  // a second click
    var submitter = event.submitter || null;
    var checked = form.hasAttribute("data-no-keep") || form.getAttribute("data-sign-in-checked") === "yes";
    hold(form, submitter, checked);
    if (checked) { return; }
    event.preventDefault();
    fetch("/session/ping", {credentials: "same-origin", headers: {"Accept": "application/json"}, redirect: "manual"})
      .then(function (response) {
        if (response.ok) {
          form.setAttribute("data-sign-in-checked", "yes");
          send(form, submitter);
          return;
        }
        release(form);
        keep(form, "signed-out");
        var here = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(here));
      })
      .catch(function () {
        // The server cannot be reached: post anyway, as the browser would without this check.
        form.setAttribute("data-sign-in-checked", "yes");
        send(form, submitter);
      });
  });
})();
