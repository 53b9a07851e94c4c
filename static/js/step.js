// The step page's live log is replaced on every poll: keep showing its newest line while "Follow" is ticked,
// keep the reader's place when they scrolled up (which unticks it).
(function () {
  let follow = true;
  let savedTop = null;
  const log = () => document.getElementById("step-log");

  function place() {
    const el = log();
    const box = document.getElementById("follow-log");
    if (box) box.checked = follow;
    if (!el) return;
    placing = true;
    if (follow) el.scrollTop = el.scrollHeight;
    else if (savedTop !== null) el.scrollTop = savedTop;
    requestAnimationFrame(() => { placing = false; });
  }

  document.addEventListener("change", (event) => {
    if (event.target.id === "follow-log") { follow = event.target.checked; place(); }
  });
  let placing = false;
  document.addEventListener("scroll", (event) => {
    // A person scrolling up leaves the tail; back at the bottom, it follows again. Our own scrolling does not count.
    const el = log();
    if (placing || event.target !== el) return;
    follow = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
    const box = document.getElementById("follow-log");
    if (box) box.checked = follow;
  }, true);
  document.addEventListener("htmx:beforeSwap", () => { const el = log(); if (el) savedTop = el.scrollTop; });
  document.addEventListener("htmx:afterSettle", place);
  document.addEventListener("DOMContentLoaded", place);
})();
