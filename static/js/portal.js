// Progressive enhancement only: every page works without it (the CSP allows scripts from 'self').
"use strict";

// Forms marked data-confirm ask before a destructive action is sent.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Filter selects submit their toolbar form as soon as they change.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.form && field.form.classList.contains("toolbar")) {
    field.form.requestSubmit();
  }
});
