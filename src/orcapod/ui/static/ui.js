// orcapod ui: follow the store. Every page polls /api/fingerprint and reloads itself when
// the store's catalog or run history changed (a run started, progressed or ended).
(function () {
  var body = document.body;
  var seen = body.getAttribute("data-fingerprint");
  var asked = parseInt(body.getAttribute("data-poll-ms"), 10);
  var every = isNaN(asked) ? 2000 : asked;  // 0 (orcapod ui --poll 0): never poll
  var live = document.getElementById("live");
  if (every <= 0) { if (live) { live.textContent = "static"; } return; }
  function poll() {
    fetch("/api/fingerprint", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (state) {
        if (live) {
          live.classList.remove("stale");
          live.classList.toggle("running", !!state.running);
          live.textContent = state.running ? "live · a run is going on" : "live";
        }
        if (state.fingerprint !== seen) {
          var y = window.scrollY;
          sessionStorage.setItem("orcapod-scroll:" + location.href, String(y));
          location.reload();
          return;
        }
        setTimeout(poll, every);
      })
      .catch(function () {
        if (live) { live.classList.add("stale"); live.textContent = "server unreachable"; }
        setTimeout(poll, every * 2);
      });
  }
  var key = "orcapod-scroll:" + location.href;
  var saved = sessionStorage.getItem(key);
  if (saved !== null) { sessionStorage.removeItem(key); window.scrollTo(0, parseInt(saved, 10)); }
  setTimeout(poll, every);
})();
