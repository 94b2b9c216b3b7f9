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

// Page-size selects outside filter toolbars submit too.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.form && field.form.classList.contains("page-size")) {
    field.form.requestSubmit();
  }
});

// Group picker: an input with data-group-picker="<lookup URL>" offers matching groups as you type
// (a <datalist>), and records the chosen group's id in the hidden field named by data-picked, so
// the server adds exactly that group. A name several groups share (a datalist shows them alike),
// or a name typed with JavaScript off, goes by name: the server then lists them to choose from.
function setUpGroupPicker(input) {
  const list = document.getElementById(input.getAttribute("list"));
  const picked = input.form.elements.namedItem(input.dataset.picked);
  let found = [];
  let timer = 0;
  let latest = 0;

  async function lookUp() {
    const asked = ++latest;
    const url = new URL(input.dataset.groupPicker, window.location.href);
    url.searchParams.set("q", input.value.trim());
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok || asked !== latest) {
      return;
    }
    found = (await response.json()).groups;
    list.replaceChildren(...found.map((group) => {
      const option = document.createElement("option");
      option.value = group.name;
      option.label = group.object_id ? `${group.source} · ${group.object_id}` : group.source;
      return option;
    }));
    remember();
  }

  function remember() {
    const matches = found.filter((group) => group.name === input.value);
    if (picked) {
      picked.value = matches.length === 1 ? String(matches[0].id) : "";
    }
  }

  input.addEventListener("input", () => {
    remember();
    window.clearTimeout(timer);
    timer = window.setTimeout(lookUp, 150);
  });
  input.addEventListener("focus", lookUp, { once: true });
}

document.querySelectorAll("input[data-group-picker]").forEach(setUpGroupPicker);

// The navigation menu on small screens: a button toggles it (without JS the menu stays open).
document.querySelectorAll("[data-menu-toggle]").forEach((button) => {
  const menu = document.getElementById(button.getAttribute("aria-controls"));
  if (!menu) {
    return;
  }
  menu.classList.add("menu-collapsible");
  button.hidden = false;
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("menu-open", open);
  });
});
