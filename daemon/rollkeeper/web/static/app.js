// rollkeeper's status page: renders the `status --json` document (docs/status.md) as it
// arrives over server-sent events, and the page document (/api/page, docs/web.md) beside it.
//
// Every text from the documents goes into the page as text (textContent), never as HTML:
// phone names and error messages are untrusted. Keys the page does not know yet (the
// document grows) are shown as they are under "More", never dropped and never an error.
"use strict";

(function () {
  const KNOWN_TOP = new Set([
    "version", "generated_at", "check", "service", "config", "state", "settings", "archive",
    "archive_check", "devices",
  ]);
  const KNOWN_DEVICE = new Set([
    "udid", "name", "model", "ios_version", "first_seen_at", "last_seen_at",
    "last_complete_backup_at", "verdict", "backed_up", "level", "reasons", "stale", "state",
    "files", "archived_not_on_phone", "archived", "last_run", "current_run",
  ]);
  const KNOWN_ARCHIVE = new Set(["files", "bytes", "path", "free_bytes"]);

  let lastStatus = null;
  let page = { words: { states: {}, verdicts: {} }, devices: [], recent_photos: [] };
  let pageSignature = null;
  let shownThumbnails = "";

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, String(value));
    }
    for (const child of children) node.append(child);
    return node;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // The same units as `rollkeeper status` (decimal, one decimal place: domain/units.py).
  function formatBytes(count) {
    if (typeof count !== "number") return "?";
    let value = count;
    for (const unit of ["B", "kB", "MB", "GB", "TB"]) {
      if (Math.abs(value) < 1000 || unit === "TB") {
        return unit === "B" ? `${Math.trunc(value)} B` : `${value.toFixed(1)} ${unit}`;
      }
      value /= 1000;
    }
    return "?";
  }

  function formatDuration(seconds) {
    const whole = Math.trunc(seconds);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.trunc(whole / 60)} min`;
    if (whole < 2 * 86400) {
      const hours = Math.trunc(whole / 3600);
      const minutes = Math.trunc((whole % 3600) / 60);
      return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
    }
    return `${Math.trunc(whole / 86400)} days`;
  }

  function formatCount(count) {
    return typeof count === "number" ? count.toLocaleString() : "?";
  }

  function plural(count, noun) {
    return `${formatCount(count)} ${noun}${count === 1 ? "" : "s"}`;
  }

  function localTime(text) {
    if (!text) return "never";
    const moment = new Date(text);
    if (Number.isNaN(moment.getTime())) return String(text);
    return moment.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }

  function ago(text) {
    const moment = new Date(text);
    if (!text || Number.isNaN(moment.getTime())) return "";
    const seconds = (Date.now() - moment.getTime()) / 1000;
    return seconds < 0 ? "" : `${formatDuration(seconds)} ago`;
  }

  function words(kind, code) {
    const known = (page.words && page.words[kind]) || {};
    return known[code] || String(code || "unknown").replaceAll("_", " ");
  }

  function fact(list, label, ...value) {
    list.append(el("dt", {}, label), el("dd", {}, ...value));
  }

  // A value of any shape, for the keys the page does not know yet.
  function renderValue(value, depth = 0) {
    if (Array.isArray(value)) {
      if (!value.length) return el("span", { className: "quiet" }, "none");
      const list = el("ol", {});
      for (const item of value.slice(0, 20)) list.append(el("li", {}, renderValue(item, depth + 1)));
      if (value.length > 20) list.append(el("li", { className: "quiet" }, `… ${value.length - 20} more`));
      return list;
    }
    if (isObject(value)) {
      if (depth > 4) return el("code", {}, JSON.stringify(value));
      const list = el("dl", { className: "facts nested" });
      for (const [key, item] of Object.entries(value)) fact(list, key, renderValue(item, depth + 1));
      return list;
    }
    if (value === null || value === undefined) return el("span", { className: "quiet" }, "—");
    return el("span", {}, String(value));
  }

  function unknownKeys(object, known) {
    const rest = {};
    for (const [key, value] of Object.entries(object || {})) if (!known.has(key)) rest[key] = value;
    return rest;
  }

  // -- the status document --------------------------------------------------------------------

  function renderStatus(status) {
    lastStatus = status;
    const check = status.check || {};
    const summary = document.getElementById("summary");
    summary.textContent = check.summary || "status unknown";
    summary.dataset.level = check.level || "unknown";
    document.getElementById("generated").textContent =
      status.generated_at ? `As of ${localTime(status.generated_at)}.` : "";
    renderProblems(status);
    renderPhones(Array.isArray(status.devices) ? status.devices : []);
    renderArchive(status);
    const more = unknownKeys(status, KNOWN_TOP);
    const moreBox = document.getElementById("more");
    moreBox.hidden = Object.keys(more).length === 0;
    document.getElementById("more-body").replaceChildren(renderValue(more));
    refreshPageIfChanged(status);
  }

  function renderProblems(status) {
    const box = document.getElementById("problems");
    const items = [];
    if (status.service && status.service.running === false) {
      items.push("The rollkeeper service is not running.");
    }
    const config = status.config || {};
    for (const problem of config.problems || []) items.push(`Config: ${problem}`);
    const state = status.state || {};
    if (state.error) items.push(`State database unreadable: ${state.error}`);
    if (state.exists === false) items.push("No backup yet: plug in a phone, unlock it and tap Trust.");
    box.hidden = items.length === 0;
    box.replaceChildren(...items.map((text) => el("p", {}, text)));
  }

  function renderPhones(devices) {
    const box = document.getElementById("phones");
    if (!devices.length) {
      box.replaceChildren(el("p", { className: "card quiet" },
        "No phone seen yet: plug in a phone, unlock it and tap Trust."));
      return;
    }
    box.replaceChildren(...devices.map(renderPhone));
  }

  function renderPhone(device) {
    const extra = (page.devices || []).find((item) => item.udid === device.udid) || {};
    const card = el("article", {
      className: "card phone", dataset: { udid: device.udid || "", level: device.level || "" },
    });
    const model = [device.model, device.ios_version ? `iOS ${device.ios_version}` : ""]
      .filter(Boolean).join(", ");
    card.append(el("h2", {}, device.name || "(unnamed phone)",
      model ? el("span", { className: "model" }, ` ${model}`) : null));
    card.append(el("p", {
      className: "verdict", dataset: { verdict: device.verdict || "", level: device.level || "" },
    }, words("verdicts", device.verdict)));
    if (Array.isArray(device.reasons) && device.reasons.length) {
      card.append(el("ul", { className: "reasons" }, device.reasons.map((text) => el("li", {}, text))));
    }
    card.append(renderNow(device));
    const facts = el("dl", { className: "facts" });
    const stale = device.stale || {};
    fact(facts, "Last complete backup",
      localTime(device.last_complete_backup_at),
      device.last_complete_backup_at ? ` (${ago(device.last_complete_backup_at)})` : "",
      stale.stale ? el("strong", { className: "stale" }, " — too long ago") : "");
    renderFiles(facts, device);
    renderLastRun(facts, device.last_run);
    fact(facts, "Last seen", localTime(device.last_seen_at));
    card.append(facts);
    card.append(renderFailing(extra.failing_now));
    card.append(renderMonths(extra));
    const more = unknownKeys(device, KNOWN_DEVICE);
    if (Object.keys(more).length) {
      card.append(el("details", { className: "more" }, el("summary", {}, "More"), renderValue(more)));
    }
    card.append(el("p", { className: "udid quiet" }, device.udid || ""));
    return card;
  }

  function renderNow(device) {
    const state = device.state || {};
    const box = el("div", { className: "now", dataset: { state: state.name || "" } });
    const progress = state.progress;
    if (!isObject(progress)) {
      let text = words("states", state.name);
      if (state.detail && state.name === state.recorded) text += ` (${state.detail})`;
      box.append(el("p", {}, el("span", { className: "label" }, "Now: "), text));
      return box;
    }
    const byBytes = progress.bytes_total > 0;
    const done = byBytes ? progress.bytes_done : progress.files_done;
    const total = byBytes ? progress.bytes_total : progress.files_total;
    const bar = el("progress", {
      className: "transfer", max: Math.max(total, 1), value: Math.min(done, Math.max(total, 1)),
    });
    bar.textContent = total ? `${Math.round((100 * done) / total)} %` : "";
    const found = progress.scanning ? " found so far (still scanning)" : "";
    let text = `Backing up: ${formatCount(progress.files_done)} of ${plural(progress.files_total, "file")}${found}, ` +
      `${formatBytes(progress.bytes_done)} of ${formatBytes(progress.bytes_total)}`;
    if (typeof progress.eta_seconds === "number") text += `, about ${formatDuration(progress.eta_seconds)} left`;
    box.append(bar, el("p", { className: "progress-text" }, text));
    return box;
  }

  function renderFiles(facts, device) {
    const files = device.files || {};
    fact(facts, "On the phone",
      `${plural(files.on_phone, "file")} at the last scan: `,
      el("strong", {}, `${formatCount(files.archived)} archived`), ", ",
      el("span", { className: files.pending ? "warn" : "" }, `${formatCount(files.pending)} pending`), ", ",
      el("span", { className: files.failed ? "bad" : "" }, `${formatCount(files.failed)} failed`), ", ",
      `${formatCount(files.excluded)} excluded`);
    if (device.archived_not_on_phone) {
      fact(facts, "Gone from the phone",
        `${plural(device.archived_not_on_phone, "file")} kept in the archive (deleted on the phone, or offloaded to iCloud)`);
    }
    const archived = device.archived || {};
    fact(facts, "In the archive", `${plural(archived.files, "file")}, ${formatBytes(archived.bytes)}`);
  }

  function renderLastRun(facts, run) {
    if (!isObject(run)) return;
    let text = `${run.outcome}, ${localTime(run.finished_at)}: ${formatCount(run.files_copied)} copied ` +
      `(${formatBytes(run.bytes_copied)}), ${formatCount(run.files_failed)} failed, ` +
      `${formatCount(run.files_pending)} pending`;
    if (run.error) text += `; ${run.error}`;
    fact(facts, "Last run", text);
  }

  function renderFailing(failing) {
    if (!Array.isArray(failing) || !failing.length) return "";
    return el("details", { className: "failing", open: true },
      el("summary", {}, `Failing now: ${plural(failing.length, "file")}`),
      el("ul", {}, failing.map((item) =>
        el("li", {}, el("code", {}, item.phone_path), ` — ${item.reason}`))),
      el("p", { className: "quiet" }, "All of them, with details: rollkeeper history --failed"));
  }

  // Archived photos per month of capture; the library's counts beside them once known.
  // The chart is 600 units wide whatever the number of months, and scales evenly.
  function renderMonths(extra) {
    const months = Array.isArray(extra.months) ? extra.months : [];
    if (!months.length) return "";
    const figure = el("figure", { className: "months" });
    const libraryRead = extra.library_read === true;
    const highest = Math.max(1, ...months.map((row) => Math.max(row.archived || 0, row.library || 0)));
    const width = 600, height = 90, top = 14, bottom = 16;
    const step = width / months.length;
    const gap = Math.min(2, step / 4);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height + top + bottom}`, role: "img",
      "aria-label": "Archived photos per month of capture",
    });
    chart.append(svg("text", { x: 0, y: 10, class: "scale" },
      document.createTextNode(`${plural(highest, "photo")} in the busiest month`)));
    chart.append(svg("line", { x1: 0, x2: width, y1: top + height, y2: top + height, class: "axis" }));
    let lastLabel = -Infinity;
    months.forEach((row, index) => {
      const x = index * step;
      if (libraryRead && typeof row.library === "number") {
        const libraryHeight = (height * row.library) / highest;
        chart.append(svg("rect", {
          class: "library", x: x + gap / 2, y: top + height - libraryHeight,
          width: Math.max(step - gap, 0.5), height: libraryHeight,
        }, svg("title", {}, document.createTextNode(`${row.month}: ${row.library} in the phone's library`))));
      }
      const barHeight = (height * (row.archived || 0)) / highest;
      chart.append(svg("rect", {
        class: "archived", x: x + gap, y: top + height - barHeight,
        width: Math.max(step - 2 * gap, 0.5), height: barHeight,
      }, svg("title", {}, document.createTextNode(`${row.month}: ${row.archived} archived`))));
      const month = String(row.month);
      const january = month.endsWith("-01");
      if ((index === 0 || january) && x - lastLabel >= 32) {
        const atEnd = x > width - 30;
        chart.append(svg("text", {
          x: atEnd ? width : x, y: top + height + 12, "text-anchor": atEnd ? "end" : "start",
        }, document.createTextNode(index === 0 && !january ? month : month.slice(0, 4))));
        lastLabel = x;
      }
    });
    const note = libraryRead
      ? "Bars: photos archived; outline: photos in the phone's library, by month of capture. A gap is a month not fully backed up."
      : "Photos archived, by month of capture. The phone's own counts appear beside them once rollkeeper reads its Photos library.";
    figure.append(chart, el("figcaption", { className: "quiet" }, note));
    return figure;
  }

  function renderArchive(status) {
    const archive = status.archive || {};
    const facts = document.getElementById("archive-facts");
    facts.replaceChildren();
    fact(facts, "Holds", `${plural(archive.files, "file")}, ${formatBytes(archive.bytes)}`);
    if ("free_bytes" in archive) {
      fact(facts, "Free space",
        typeof archive.free_bytes === "number"
          ? `${formatBytes(archive.free_bytes)} free on its disk`
          : el("span", { className: "bad" }, "unknown: the archive folder cannot be reached"));
    }
    if (archive.path) fact(facts, "Folder", el("code", {}, archive.path));
    fact(facts, "Archive check", renderArchiveCheck(status.archive_check));
    const more = unknownKeys(archive, KNOWN_ARCHIVE);
    for (const [key, value] of Object.entries(more)) fact(facts, key, renderValue(value));
  }

  function renderArchiveCheck(check) {
    if (!isObject(check)) {
      return el("span", { className: "good" }, "no scheduled check has found a problem");
    }
    if (check.error) return el("span", { className: "warn" }, `report unreadable: ${check.error}`);
    const box = el("div", {});
    if (check.archive_unreachable) {
      box.append(el("p", { className: "warn" },
        `the archive folder was unreachable at the check of ${localTime(check.checked_at)}`));
    }
    if (check.unresolved_count) {
      box.append(el("p", { className: "bad" },
        `${plural(check.unresolved_count, "file")} damaged or missing at the check of ` +
        `${localTime(check.checked_at)}, not verified since: run rollkeeper verify`));
      box.append(el("ul", {}, (check.unresolved || []).slice(0, 10).map((path) => el("li", {}, el("code", {}, path)))));
    } else if (!check.archive_unreachable) {
      box.append(el("p", { className: "good" }, `settled since the check of ${localTime(check.checked_at)}`));
    }
    return box;
  }

  // -- the page document (photos, months, failing files) --------------------------------------

  function signatureOf(status) {
    const archive = status.archive || {};
    const devices = (status.devices || []).map((device) =>
      [device.udid, device.last_run && device.last_run.id, device.files && device.files.archived,
        device.files && device.files.failed].join(":"));
    return [archive.files, ...devices].join("|");
  }

  function refreshPageIfChanged(status) {
    const signature = signatureOf(status);
    if (signature === pageSignature) return;
    pageSignature = signature;
    loadPage();
  }

  async function loadPage() {
    try {
      const response = await fetch("/api/page", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      page = await response.json();
    } catch (error) {
      return;
    }
    renderThumbnails(Array.isArray(page.recent_photos) ? page.recent_photos : []);
    if (lastStatus) {
      renderPhones(Array.isArray(lastStatus.devices) ? lastStatus.devices : []);
    }
  }

  function renderThumbnails(photos) {
    const key = photos.map((photo) => photo.id).join(",");
    if (key === shownThumbnails) return;
    shownThumbnails = key;
    const box = document.getElementById("thumbnails");
    if (!photos.length) {
      box.replaceChildren(el("p", { className: "quiet" }, "No photo archived yet."));
      return;
    }
    box.replaceChildren(...photos.map((photo) => {
      const image = el("img", {
        className: "thumbnail", src: photo.thumbnail, alt: photo.name, loading: "lazy",
        title: `${photo.name}, archived ${localTime(photo.stored_at)}`,
        dataset: { id: photo.id },
      });
      image.addEventListener("error", () => image.classList.add("broken"));
      return el("figure", { className: "photo" }, image, el("figcaption", {}, photo.name));
    }));
  }

  // -- live updates -----------------------------------------------------------------------------

  function setLive(state, text) {
    const live = document.getElementById("live");
    live.dataset.live = state;
    live.textContent = text;
  }

  function handle(text) {
    try {
      renderStatus(JSON.parse(text));
    } catch (error) {
      setLive("error", "could not read the status");
    }
  }

  async function poll() {
    try {
      const response = await fetch("/api/status", { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        handle(await response.text());
        setLive("live", "updated every few seconds");
      } else {
        setLive("error", response.status === 401 ? "not signed in: open the link from `rollkeeper web url`" : `error ${response.status}`);
      }
    } catch (error) {
      setLive("error", "the service does not answer");
    }
    window.setTimeout(poll, 3000);
  }

  function start() {
    if (!("EventSource" in window)) {
      poll();
      return;
    }
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => setLive("live", "live"));
    source.addEventListener("status", (event) => {
      setLive("live", "live");
      handle(event.data);
    });
    // EventSource reconnects by itself; say so meanwhile.
    source.addEventListener("error", () => setLive("connecting", "reconnecting…"));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
