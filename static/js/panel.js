// Every page: ask before a form marked data-confirm is sent; after a post, move focus to the message it left.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  const message = document.querySelector(".messages");
  if (message) message.focus();
});
// Times are shown in the viewer's zone (named): tell the server which one, once.
(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !document.cookie.split("; ").includes("tz=" + zone)) {
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
  }
})();
