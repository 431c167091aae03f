// Today's board keeps itself current: every few seconds it asks /today/live whether anything shown
// has changed (204: nothing) and swaps the new board in place, keeping keyboard focus where it was.
// Between polls it counts each chair's next reading down. A screen reader hears only what matters:
// a reading that turned overdue, a new alert. Polling pauses while the tab is hidden or on request,
// and stops for good once the sign-in has ended (the poll is not activity: the idle limit still applies).
(function () {
  "use strict";
  var board, offset = 0, timer = null, ticker = null, paused = false, stopped = false, seen = {};
  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";

  function serverNow() { return Date.now() + offset; }

  function syncClock(serverMs) {
    var value = parseInt(serverMs, 10);
    if (!isNaN(value)) { offset = value - Date.now(); }
  }

  function minutes(ms) { return Math.floor(ms / 60000); }

  function tick() {
    board.querySelectorAll("[data-tick]").forEach(function (span) {
      if (span.hasAttribute("data-until")) {
        var left = parseInt(span.getAttribute("data-until"), 10) - serverNow();
        span.textContent = left >= 60000 ? "in " + minutes(left) + " min" : "in under a minute";
      } else if (span.hasAttribute("data-since")) {
        var late = serverNow() - parseInt(span.getAttribute("data-since"), 10);
        span.textContent = String(Math.max(1, minutes(late)));
      }
    });
  }

  // What matters to hear: the keys of the overdue readings and of the alerts not acknowledged.
  function noticed(announce) {
    var news = [];
    board.querySelectorAll("[data-overdue-key], [data-alert-key]").forEach(function (el) {
      var key = el.hasAttribute("data-overdue-key") ? "o" + el.getAttribute("data-overdue-key")
        : "a" + el.getAttribute("data-alert-key");
      if (!seen[key] && announce) { news.push(el.getAttribute("data-announce")); }
      seen[key] = true;
    });
    if (news.length) { document.getElementById("board-announcer").textContent = news.join(" "); }
  }

  function keyOf(el) {
    if (!el || el === board || !board.contains(el)) { return null; }
    return [el.tagName, el.getAttribute("href") || "", el.form ? el.form.getAttribute("action") : "",
      el.textContent.trim()].join("|");
  }

  function swap(html) {
    var focused = keyOf(document.activeElement);
    board.innerHTML = html;
    if (focused) {
      var again = Array.prototype.find.call(board.querySelectorAll(FOCUSABLE), function (el) {
        return keyOf(el) === focused;
      });
      if (again) { again.focus({preventScroll: true}); }
    }
    noticed(true);
    tick();
  }

  function say(text) { document.getElementById("board-update-state").textContent = text; }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    clearInterval(ticker);
    document.getElementById("board-updates").hidden = true;
    var box = document.getElementById("board-stopped");
    box.className = "alert alert-danger";
    box.textContent = "This board is no longer updating: you were signed out, or the screen locked. ";
    var link = document.createElement("a");
    link.href = board.getAttribute("data-login-url");
    link.className = "alert-link";
    link.textContent = "Open the board again to see overdue readings and alerts";
    box.appendChild(link);
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped && !paused && !document.hidden) {
      timer = setTimeout(poll, parseInt(board.getAttribute("data-poll-seconds"), 10) * 1000);
    }
  }

  function poll() {
    if (stopped || paused || document.hidden) { return; }
    if (document.querySelector("form[data-sending]")) { schedule(); return; }  // leaving the page
    var url = board.getAttribute("data-live-url") + "?since=" + encodeURIComponent(board.getAttribute("data-state"));
    fetch(url, {credentials: "same-origin", cache: "no-store", redirect: "manual",
      headers: {"Accept": "application/json, text/html;q=0.9"}})
      .then(function (response) {
        if (response.status !== 200 && response.status !== 204) {
          // Signed out (401, or a redirect to the sign-in page) or no longer allowed: stop asking.
          // A chair tablet's screen that locked: show the lock screen now, never a stale board with names on it.
          if (response.status === 401) {
            return response.json().then(function (body) {
              if (body && body.status === "locked") { window.location.reload(); } else { stop(); }
            }, stop);
          }
          if (response.type === "opaqueredirect" || response.status === 403) { stop(); }
          else { say("The last update failed; trying again."); schedule(); }
          return null;
        }
        syncClock(response.headers.get("X-Server-Now"));
        if (response.status === 204) { say("Up to date; updates itself every " + board.getAttribute("data-poll-seconds") + " seconds."); tick(); schedule(); return null; }
        board.setAttribute("data-state", response.headers.get("X-Board-State") || "");
        return response.text().then(function (html) {
          swap(html);
          say("Up to date; updates itself every " + board.getAttribute("data-poll-seconds") + " seconds.");
          schedule();
        });
      })
      .catch(function () { say("Could not reach the server; trying again."); schedule(); });
  }

  function togglePause(event) {
    paused = !paused;
    event.currentTarget.setAttribute("aria-pressed", paused ? "true" : "false");
    event.currentTarget.textContent = paused ? "Resume updates" : "Pause updates";
    if (paused) {
      clearTimeout(timer);
      clearInterval(ticker);
      say("Updates paused: this board may be out of date.");
    } else {
      ticker = setInterval(tick, 5000);
      poll();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    board = document.getElementById("board-live");
    if (!board) { return; }
    var body = board.querySelector("[data-now]");
    if (body) { syncClock(body.getAttribute("data-now")); }
    noticed(false);
    tick();
    document.getElementById("board-updates").hidden = false;
    document.getElementById("board-pause").addEventListener("click", togglePause);
    ticker = setInterval(tick, 5000);
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { clearTimeout(timer); } else { poll(); }
    });
    schedule();
  });
})();
