/**
 * Gallery `/gallery`: the visitor's results, newest first, as thumbnails with their classes. More pages load
 * as the end of the grid scrolls into view (cursor pagination). The class filter matches class names by
 * prefix, suggests the classes present in the visitor's results (`GET /api/classes`), and lives in the URL
 * (`/gallery?class=dog`), so Back and a reload keep it.
 */
import { createApi } from "./api.js";
import { el, showNotice } from "./dom.js";
import { stageText } from "./jobs.js";

const api = createApi();
const grid = document.getElementById("gallery");
const end = document.getElementById("gallery-end");
const status = document.getElementById("status");
const filter = document.getElementById("class-filter");
const options = document.getElementById("class-options");
const PAGE = 24;

let cursor = null;
let exhausted = false;
let loading = null;
let generation = 0; // a new filter starts a new generation; late pages of an old one are dropped

function item(job) {
  const classes = job.classes || [];
  const deleteButton = el("button", { type: "button", class: "button small quiet", dataset: { testid: "delete-button" } }, "Delete");
  const node = el(
    "article",
    { class: "gallery-item", dataset: { testid: "gallery-item", jobId: job.id, state: job.state } },
    el(
      "a",
      { href: `/jobs/${job.id}`, class: "thumb-link", "aria-label": `Open ${job.filename || "result"}` },
      el("img", { class: "thumb", src: job.urls?.thumbnail || "", alt: job.filename || "", loading: "lazy" }),
    ),
    el(
      "div",
      { class: "gallery-meta" },
      el("div", { class: "card-title", title: job.filename || "" }, job.filename || "photo"),
      el("time", { datetime: job.created_at || "" }, job.created_at ? new Date(job.created_at).toLocaleString() : ""),
      job.state === "done" && classes.length
        ? el(
            "ul",
            { class: "chips", "aria-label": "Classes found" },
            classes.map((name) =>
              el("li", {}, el("button", { type: "button", class: "chip", title: `Show only results with ${name}`, onclick: () => applyFilter(name) }, name)),
            ),
          )
        : job.state === "done"
          ? el("p", { class: "no-objects", dataset: { testid: "no-objects" } }, "no objects found")
          : el("p", { class: `state state-${job.state}` }, `${job.state}: ${stageText(job)}`),
      deleteButton,
    ),
  );
  // Two clicks: the first arms the button, so one slip does not lose a result.
  deleteButton.addEventListener("click", async () => {
    if (deleteButton.dataset.armed !== "true") {
      deleteButton.dataset.armed = "true";
      deleteButton.textContent = "Really delete?";
      return;
    }
    deleteButton.disabled = true;
    try {
      await api.delete(`/api/jobs/${job.id}`);
      node.remove();
    } catch (err) {
      showNotice(status, err.message);
      deleteButton.disabled = false;
    }
  });
  return node;
}

async function loadMore() {
  if (loading || exhausted) return loading;
  const mine = generation;
  loading = (async () => {
    try {
      const page = await api.listJobs({ cursor, className: filter.value.trim() || null, limit: PAGE });
      if (mine !== generation) return;
      grid.append(...page.jobs.map(item));
      cursor = page.next_cursor;
      exhausted = !cursor;
      if (!grid.children.length) {
        showNotice(status, filter.value.trim() ? `No results with a class starting “${filter.value.trim()}”.` : "No results yet: upload a photo first.", "info");
      }
      document.body.dataset.ready = "true";
    } catch (err) {
      showNotice(status, err.message);
      exhausted = true;
    } finally {
      loading = null;
    }
  })();
  await loading;
  // A short first page may not fill the screen: keep going while the end marker is still visible.
  if (!exhausted && mine === generation && end.getBoundingClientRect().top < window.innerHeight) loadMore();
}

/** The filter in the address: pushed for a chosen class (Back undoes it), replaced while typing. */
function writeUrl(push) {
  const url = new URL(window.location.href);
  const value = filter.value.trim();
  if (value) url.searchParams.set("class", value);
  else url.searchParams.delete("class");
  if (url.href === window.location.href) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function applyFilter(name) {
  filter.value = name;
  writeUrl(true);
  restart();
}

function restart() {
  generation += 1;
  cursor = null;
  exhausted = false;
  loading = null;
  grid.replaceChildren();
  status.replaceChildren();
  loadMore();
}

/** Suggest the classes in the visitor's results, most frequent first; the placeholder names the commonest. */
async function suggestClasses() {
  const { classes } = await api.get("/api/classes");
  options.replaceChildren(...classes.map(({ name, count }) => el("option", { value: name, label: `${name} (${count})` })));
  filter.placeholder = classes.length ? `e.g. ${classes[0].name}` : "no classes yet";
}

let typing = 0;
filter.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    writeUrl(false);
    restart();
  }, 250);
});
window.addEventListener("popstate", () => {
  filter.value = new URL(window.location.href).searchParams.get("class") || "";
  restart();
});

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}).observe(end);

filter.value = new URL(window.location.href).searchParams.get("class") || "";
api
  .session()
  .then(() => Promise.all([loadMore(), suggestClasses()]))
  .catch((err) => showNotice(status, err.message));
