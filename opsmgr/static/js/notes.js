// The note draft saves itself: two seconds after typing stops, at least every 30 seconds while
// typing goes on, when a field loses focus, and when the tab is hidden or closed. A save carries
// what the form was opened with: the server merges it with a colleague's save, and the fields it
// brought in are put into the form and named. A field both changed stops autosaving and asks the
// user to choose (the page then shows both versions; autosave waits until the choice is saved).
// If the sign-in has ended, the unsaved text is kept in this tab's sessionStorage, the user signs
// in again, and the text is put back and saved (it never leaves the tab otherwise).
(function () {
  "use strict";
  var form = document.getElementById("note-form");
  if (!form) { return; }
  var statusLine = document.getElementById("autosave-status");
  var conflictBox = document.getElementById("autosave-conflict");
  var conflictText = document.getElementById("autosave-conflict-text");
  var keptBox = document.getElementById("autosave-kept");
  var opened = form.elements.namedItem("opened");
  var pending = form.elements.namedItem("pending");
  var url = form.getAttribute("data-autosave-url");
  var stashKey = "opsmgr-note-unsaved-" + form.getAttribute("data-session");
  var IDLE_MS = 2000, MAX_WAIT_MS = 30000;
  var timer = null, firstChangeAt = null, dirty = false, inFlight = null, stopped = false, restored = false;
  var conflicted = false, lastStatus = null, submitting = false, keptUnseen = false;

  function say(text) { statusLine.textContent = text; }

  function textFields() {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrf_token" && el.name !== "submission_key" && el.name !== "version" &&
        el.type !== "submit" && el.type !== "radio";
    });
  }

  function setVersion(version) {
    document.querySelectorAll("input[name='version']").forEach(function (input) { input.value = version; });
  }

  function stash() {
    var values = {};
    textFields().forEach(function (el) { values[el.name] = el.value; });
    try { sessionStorage.setItem(stashKey, JSON.stringify(values)); } catch (e) { /* storage full or off */ }
  }

  function restoreStash() {
    var raw = null;
    try { raw = sessionStorage.getItem(stashKey); } catch (e) { return; }
    if (!raw) { return; }
    var values = JSON.parse(raw);
    textFields().forEach(function (el) {
      if (Object.prototype.hasOwnProperty.call(values, el.name)) { el.value = values[el.name]; }
    });
    dirty = true;
    restored = true;
    say("Restored what you typed before you were signed out. Saving it now…");
    save();
  }

  function clearStash() { try { sessionStorage.removeItem(stashKey); } catch (e) { /* ignore */ } }

  function schedule() {
    if (stopped) { return; }
    dirty = true;
    if (firstChangeAt === null) { firstChangeAt = Date.now(); }
    clearTimeout(timer);
    var wait = Math.max(0, Math.min(IDLE_MS, firstChangeAt + MAX_WAIT_MS - Date.now()));
    timer = setTimeout(save, wait);
    say("Unsaved changes…");
  }

  function save() {
    clearTimeout(timer);
    if (stopped || !dirty) { return inFlight || Promise.resolve(); }
    if (inFlight) { return inFlight.then(save); }
    dirty = false;
    firstChangeAt = null;
    say("Saving…");
    var body = new FormData(form), sent = {};
    body.forEach(function (value, name) { sent[name] = value; });
    inFlight = fetch(url, {method: "POST", body: body, credentials: "same-origin",
                           headers: {"Accept": "application/json"}, redirect: "manual"})
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401) { return signedOut(); }
        var page = (response.headers.get("Content-Type") || "").indexOf("application/json") === -1;
        if (page && (response.status === 400 || response.status === 409)) { return refusedAsPage(response.status); }
        return response.json().then(function (reply) { handle(response.status, reply, sent); });
      })
      .catch(function () {
        dirty = true;
        say("Not saved: the connection failed. Retrying when you type again; or press Save draft.");
      })
      .then(function () { inFlight = null; });
    return inFlight;
  }

  // The fields the server brought in from a colleague's save go into the form, unless typed in while the
  // save was under way: then that field keeps what it was opened with, so the next save asks to choose.
  function takeMerged(body, sent) {
    var prints = JSON.parse(body.opened), before = {};
    try { before = JSON.parse(sent.opened || "{}"); } catch (e) { before = {}; }
    Object.keys(body.kept || {}).forEach(function (name) {
      var el = form.elements.namedItem(name);
      if (!el) { return; }
      if (el.value === sent[name]) { el.value = body.kept[name]; } else { prints[name] = before[name]; }
    });
    opened.value = JSON.stringify(prints);
    if (body.kept_message) {
      keptUnseen = true;
      keptBox.textContent = "Draft saved. " + body.kept_message;
      keptBox.hidden = false;
    }
  }

  function handle(status, body, sent) {
    lastStatus = body.status;
    if (body.status === "expired") { return refusedAsPage(400); }
    if (body.status === "saved") {
      setVersion(body.version);
      takeMerged(body, sent);
      var badge = document.querySelector("[data-testid='note-status']");
      if (badge && badge.textContent.indexOf("Not started") !== -1) {
        badge.textContent = "Note: Draft";
        badge.className = badge.className.replace("note-none", "note-draft");
      }
      clearStash();
      say("Draft saved at " + body.saved_at + ".");
    } else if (body.status === "conflict") {
      stopped = true;
      conflicted = true;
      conflictText.textContent = body.message + " Autosave is paused so nothing is overwritten.";
      conflictBox.hidden = false;
      say("Not saved: a field you changed was also changed by " + (body.saved_by || "someone else") + ".");
    } else if (body.status === "invalid") {
      dirty = true;
      var names = Object.keys(body.errors).map(function (name) {
        var label = form.querySelector("label[for='" + name + "']");
        return label ? label.textContent.trim() : name;
      }).join(", ");
      say("Not saved yet: check " + names + ". Press Save draft to see the message next to the field.");
    } else {
      stopped = true;
      say("Not saved: " + (body.message || "the note cannot change now."));
    }
  }

  // An error page instead of JSON: refused before the note view answered. A 400 is the form's security
  // token, gone with a sign-out in another tab: reload, which asks for the sign-in if needed, and the
  // text comes back from the stash (once: a second refusal after restoring stops here). A 409 is a
  // note signed meanwhile.
  function refusedAsPage(status) {
    stopped = true;
    stash();
    if (status === 400 && !restored) {
      say("This page's sign-in has ended. What you typed is kept in this tab; reloading…");
      window.location.assign(window.location.pathname);
    } else {
      say("Not saved: " + (status === 409 ? "the note cannot change now (it may have been signed)" :
          "the server refused it") + ". What you typed is kept in this tab; reload the page to see the note.");
    }
  }

  function signedOut() {
    stopped = true;
    stash();
    say("You were signed out. What you typed is kept in this tab: sign in again and it will be put back.");
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("focusout", function () { if (dirty) { save(); } });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && dirty && !stopped) {
      dirty = false;
      navigator.sendBeacon(url, new FormData(form));
    }
  });
  // Save draft: save through the same checked path first, so a sign-out or an expired form never
  // throws the text away; then the ordinary submit shows the saved page. After a conflict, the
  // ordinary submit goes straight to the server's side-by-side comparison.
  form.addEventListener("submit", function (event) {
    if (submitting || conflicted) { clearTimeout(timer); stopped = true; return; }
    event.preventDefault();
    dirty = true;
    save().then(function () {
      // Saved: show the saved page, unless a save brought in a colleague's text not yet pointed out:
      // then stay, with the fields filled in and named above. Refused for a value: post the form, so
      // the server shows the message next to the field with everything typed kept.
      if (lastStatus === "saved" && keptUnseen) { keptUnseen = false; keptBox.focus(); return; }
      if (lastStatus === "saved" || lastStatus === "invalid") {
        submitting = true;
        if (lastStatus === "saved") { clearStash(); }
        form.submit();
      }
    });
  });
  // "Mark complete" and the other small forms: save pending text first, then submit with the new version.
  document.querySelectorAll("[data-save-first]").forEach(function (button) {
    button.form.addEventListener("submit", function (event) {
      if (!dirty && !inFlight) { return; }
      event.preventDefault();
      var target = event.target;
      save().then(function () { if (!stopped) { target.submit(); } });
    });
  });
  keptBox.tabIndex = -1;
  if (pending && pending.value) {
    // Shown with fields to choose: nothing saves until the choices are sent with Save draft.
    stopped = true;
    conflicted = true;
    say("Autosave is paused: choose which version to keep for each field marked, then press Save draft.");
  }
  restoreStash();
})();
