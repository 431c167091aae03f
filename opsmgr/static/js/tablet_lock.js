// An enrolled chair tablet locks its screen when nobody has touched it for the configured time: the
// hidden form (auth/_tablet_lock.html) posts to /lock and comes back to this page, which then shows the
// lock screen. The server locks the session at its next request anyway; this covers a page left open.
// Whatever was typed on the page is kept in the tab first and put back after the PIN (js/app.js).
(function () {
  "use strict";
  var form = document.getElementById("tablet-lock");
  if (!form) { return; }
  var idleMs = parseInt(form.getAttribute("data-idle-seconds"), 10) * 1000;
  if (!(idleMs > 0)) { return; }
  var timer = null;
  function reset() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (window.opsmgrKeepTyping) { window.opsmgrKeepTyping(); }  // js/app.js: typing comes back after the PIN
      form.submit();
    }, idleMs);
  }
  ["pointerdown", "keydown", "input", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, reset, {passive: true, capture: true});
  });
  reset();
})();
