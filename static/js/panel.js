// Every page: ask before a form marked data-confirm is sent; after a post, move focus to the message it left.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  const message = document.querySelector(".messages");
  if (message) message.focus();
});
