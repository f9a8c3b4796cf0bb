// Tiny DOM helpers: elements are built with createElement and text nodes, never
// innerHTML, so nothing the server or a student wrote can become markup.
const SVG_NS = "http://www.w3.org/2000/svg";

export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export const pct = (p) => `${Math.round(p * 100)}%`;

export function seconds(s) {
  if (s < 90) return `about ${Math.round(s)} s`;
  return `about ${Math.round(s / 60)} min`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * For a part of the page that loads before it draws, where a newer load may start before
 * an older one ends (a topic changed twice, a second navigation): each call starts a
 * load and returns its check, true while no newer load has started. A load whose check
 * is false draws nothing, so the last request wins, not the last answer.
 */
export function latestOnly() {
  let started = 0;
  return () => {
    const mine = ++started;
    return () => mine === started;
  };
}
