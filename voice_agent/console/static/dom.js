// Building the page: text only ever goes in through textContent (a caller's words are never
// parsed as markup).
"use strict";

(() => {
  const VA = window.VA;
  const { when } = VA;
  const $ = (selector, root = document) => root.querySelector(selector);

  // ---- DOM -----------------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== false && child !== "") {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  function fill(container, nodes) {
    container.replaceChildren(...nodes);
    markEmpty(container);
  }

  function markEmpty(container) {
    const empty = container.dataset.empty;
    if (!empty) return;
    const placeholder = $(":scope > .empty", container);
    const hasContent = [...container.children].some((c) => !c.classList.contains("empty"));
    if (hasContent && placeholder) placeholder.remove();
    if (!hasContent && !placeholder) {
      const tag = container.tagName === "UL" || container.tagName === "OL" ? "li" : "p";
      container.append(el(tag, { class: "empty", text: empty }));
    }
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function toast(text) {
    const box = $("#toast");
    box.textContent = text;
    show(box, true);
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => show(box, false), 4000);
  }

  function activity(text) {
    const list = $("#activity");
    list.prepend(el("li", {}, el("time", { text: when(new Date().toISOString(), "time") }), text));
    while (list.children.length > 30) list.lastElementChild.remove();
    markEmpty(list);
  }

  function badge(id, count) {
    const node = $(id);
    node.textContent = count > 0 ? String(count) : "";
    show(node, count > 0);
  }

  function phone(number) {
    return number ? el("a", { href: `tel:${number}`, text: number }) : "unknown number";
  }

  function currentTab() {
    const selected = $('[role=tab][aria-selected="true"]');
    return selected ? selected.dataset.tab : "live";
  }

  Object.assign(VA, { $, el, fill, markEmpty, show, toast, activity, badge, phone, currentTab });
})();
