// The UI's own script: htmx settings, following logs live, and the YAML editor. No framework, no build step.
"use strict";

// Refusals (4xx) carry a message to show where the action was taken: let htmx swap them in.
document.addEventListener("DOMContentLoaded", () => {
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[2345]..", swap: true, error: false },
    ];
  }
  setUpLog();
  document.querySelectorAll("form[data-editor]").forEach(setUpEditor);
});

// ---- Logs: one EventSource at a time; each line appended as text (never parsed as HTML). ----
let source = null;

function follow(url, title, perTask) {
  const pre = document.getElementById("log");
  const state = document.getElementById("log-state");
  if (source) source.close();
  pre.textContent = "";
  document.getElementById("log-title").textContent = title;
  state.textContent = "following…";
  source = new EventSource(url);
  source.addEventListener("log", (event) => {
    const line = perTask ? event.data : JSON.parse(event.data).line;
    pre.append(line + "\n");
    if (document.getElementById("log-scroll").checked) pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("end", (event) => {
    state.textContent = "ended: " + JSON.parse(event.data).state;
    source.close();
    source = null;
  });
  source.onerror = () => {
    state.textContent = "the log stream was interrupted";
    if (source) source.close();
    source = null;
  };
}

function setUpLog() {
  const pre = document.getElementById("log");
  if (!pre) return;
  // Buttons live in fragments the page swaps: delegate from the document.
  document.addEventListener("click", (event) => {
    const task = event.target.closest("[data-follow-task]");
    const job = event.target.closest("[data-follow-job]");
    if (task) follow(`/ui/tasks/${task.dataset.followTask}/log/stream`, "of " + task.dataset.name, true);
    else if (job) follow(`/ui/jobs/${job.dataset.followJob}/log/stream`, "of the job", false);
  });
  follow(`/ui/jobs/${pre.dataset.job}/log/stream`, "of the job", false);
}

// ---- YAML editor: a textarea over a highlighted copy, line numbers, errors at their lines. ----
function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function highlightLine(line) {
  const comment = line.match(/^(\s*)(#.*)$/);
  if (comment) return escapeHtml(comment[1]) + `<span class="y-comment">${escapeHtml(comment[2])}</span>`;
  const key = line.match(/^(\s*(?:-\s+)?)([\w.$-]+)(:)(.*)$/);
  if (!key) return escapeHtml(line);
  const value = escapeHtml(key[4]).replace(/("[^"]*"|'[^']*')/g, '<span class="y-string">$1</span>')
    .replace(/(\{\{.*?\}\})/g, '<span class="y-template">$1</span>');
  return `${escapeHtml(key[1])}<span class="y-key">${escapeHtml(key[2])}</span>${key[3]}${value}`;
}

function setUpEditor(form) {
  const area = form.querySelector("textarea");
  const shown = form.querySelector(".highlight");
  const gutter = form.querySelector(".gutter");
  const list = form.querySelector(".problems");
  let bad = new Set();
  const redraw = () => {
    const lines = area.value.split("\n");
    shown.innerHTML = lines.map((l, i) => `<span class="${bad.has(i + 1) ? "bad" : ""}">${highlightLine(l)}</span>`).join("\n") + "\n";
    gutter.innerHTML = lines.map((_, i) => `<span class="${bad.has(i + 1) ? "bad" : ""}">${i + 1}</span>`).join("\n");
  };
  const sync = () => { shown.scrollTop = area.scrollTop; shown.scrollLeft = area.scrollLeft; gutter.scrollTop = area.scrollTop; };
  area.addEventListener("input", () => { bad = new Set(); redraw(); });
  area.addEventListener("scroll", sync);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
    if (event.key === "Tab" && !event.shiftKey) {  // two spaces; Escape then Tab leaves the editor
      if (area.dataset.escaped) { delete area.dataset.escaped; return; }
      event.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      redraw();
    }
    if (event.key === "Escape") area.dataset.escaped = "1";
  });
  redraw();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    list.innerHTML = "";
    const answer = await fetch(form.action, {
      method: "POST", body: area.value, headers: { "Content-Type": "text/yaml", "X-Tork-UI": "1" },
    });
    const body = await answer.json().catch(() => ({ message: `error ${answer.status}` }));
    if (answer.ok) { window.location.assign(body.location); return; }
    const problems = body.problems || [{ message: body.message, line: null }];
    bad = new Set(problems.filter((p) => p.line).map((p) => p.line));
    for (const problem of problems) {
      const item = document.createElement("li");
      item.className = "problem";
      if (problem.line) {
        const jump = document.createElement("button");
        jump.type = "button";
        jump.className = "link";
        jump.textContent = `line ${problem.line}`;
        jump.addEventListener("click", () => goToLine(area, problem.line));
        item.append(jump, " ");
        item.dataset.line = problem.line;
      }
      item.append(problem.message);
      list.append(item);
    }
    redraw();
  });
}

function goToLine(area, line) {
  const lines = area.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1] || "").length);
}
