/** Small DOM helpers shared by the pages. */

/**
 * Create an element: `el("button", {class: "x", dataset: {testid: "y"}, onclick}, "text", child)`.
 * Attributes named on* become listeners (removed when `signal`, an AbortSignal, aborts); `dataset` and `style`
 * objects are merged; null/false are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  const listening = attrs.signal ? { signal: attrs.signal } : undefined;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false || key === "signal") continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value, listening);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Offer a Blob as a file download. */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A canvas as a PNG Blob. */
export function canvasToPng(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("The browser could not encode the PNG."))), "image/png"),
  );
}

/** Show a message in the page's status area (role=alert for errors). */
export function showNotice(container, message, kind = "error") {
  container.replaceChildren(el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", dataset: { testid: kind === "error" ? "error" : "notice" } }, message));
}

/** The file name a download should carry, from the job's upload name. */
export function baseName(filename) {
  const name = (filename || "image").replace(/\.[^.]+$/, "");
  return name.replace(/[^\w.-]+/g, "_").slice(0, 80) || "image";
}
