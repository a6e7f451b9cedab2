// The live board: when a case moves anywhere, the server sends `change` on an event stream and the
// board's columns are fetched again (keeping the filters in the URL). Polling is the fallback.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) { return; }
  var status = document.getElementById("live-status");
  var src = board.getAttribute("data-live-src");
  var busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        board.innerHTML = html;
        if (status) { status.textContent = "已更新 " + new Date().toLocaleTimeString("zh-CN"); }
      })
      .catch(function () { if (status) { status.textContent = "刷新失败，稍后重试"; } })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  if (window.EventSource) {
    var events = new EventSource(board.getAttribute("data-live-events"));
    events.addEventListener("change", refresh);
    events.addEventListener("open", function () { refresh(); });  // catch up after a reconnect
  }
  window.setInterval(refresh, 60000);  // safety net: proxies that buffer event streams
})();
