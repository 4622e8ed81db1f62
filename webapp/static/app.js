// LabelOps: keyboard labeling and self-refreshing jobs. No inline scripts (CSP: script-src 'self').
(function () {
  "use strict";

  function setupLabeling() {
    var form = document.getElementById("label-form");
    if (!form) return;
    var buttons = Array.prototype.slice.call(form.querySelectorAll("button.choice"));
    var byKey = {};
    var letters = {};
    buttons.forEach(function (b) {
      byKey[b.dataset.key] = b;
      var first = b.value.charAt(0).toLowerCase();
      letters[first] = letters[first] ? null : b; // only unambiguous first letters
    });
    var flagKeys = {};
    var flagForm = document.getElementById("flag-form");
    if (flagForm) {
      Array.prototype.slice.call(flagForm.querySelectorAll("[data-flag-key]")).forEach(function (b) {
        flagKeys[b.dataset.flagKey] = b;
      });
    }
    var sent = false;
    var opened = performance.now();
    var leadTime = document.getElementById("lead-time");
    form.addEventListener("submit", function (e) {
      if (sent) { e.preventDefault(); return; }
      sent = true;
      // Seconds from opening the task to the label: Label Studio's lead_time.
      if (leadTime) leadTime.value = ((performance.now() - opened) / 1000).toFixed(2);
      form.classList.add("sending");
    });
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
      var panel = document.getElementById("guidelines-panel");
      // The guidelines: "?" always, "g" unless a label starts with it.
      if (panel && (e.key === "?" || (e.key.toLowerCase() === "g" && !letters.g))) {
        e.preventDefault();
        panel.open = !panel.open;
        return;
      }
      // Skip, not sure, flag: their letter unless a label starts with it.
      var flagButton = flagKeys[e.key.toLowerCase()];
      if (flagButton && !letters[e.key.toLowerCase()] && !sent) {
        e.preventDefault();
        flagButton.click();
        return;
      }
      var button = byKey[e.key] || letters[e.key.toLowerCase()];
      if (!button || sent) return;
      e.preventDefault();
      button.classList.add("pressed");
      if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
    });
  }

  // The review page: A accept, 1-9 fix to that label, R reject (with a comment), N pass, G guidelines.
  function setupReview() {
    var form = document.getElementById("review-form");
    if (!form) return;
    var fixLabel = document.getElementById("fix-label");
    var comment = document.getElementById("review-comment");
    var reject = document.getElementById("reject");
    var byKey = {};
    Array.prototype.slice.call(form.querySelectorAll("button.choice")).forEach(function (b) {
      byKey[b.dataset.key] = b;
      b.addEventListener("click", function () { fixLabel.value = b.dataset.label; });
    });
    var sent = false;
    form.addEventListener("submit", function (e) {
      var by = e.submitter;
      if (by === reject && !comment.value.trim()) {
        e.preventDefault();  // a rejection needs its reason: the annotator reads it
        comment.focus();
        comment.classList.add("needed");
        return;
      }
      if (sent) { e.preventDefault(); return; }
      sent = true;
      form.classList.add("sending");
    });
    comment.addEventListener("keydown", function (e) {
      if (e.key === "Enter") {  // Enter in the comment rejects; it never accepts by accident
        e.preventDefault();
        if (form.requestSubmit) { form.requestSubmit(reject); } else { reject.click(); }
      } else if (e.key === "Escape") {
        comment.blur();
      }
    });
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || sent) return;
      var tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
      var key = e.key.toLowerCase();
      var panel = document.getElementById("guidelines-panel");
      if (panel && (e.key === "?" || key === "g")) { e.preventDefault(); panel.open = !panel.open; return; }
      if (key === "n") { e.preventDefault(); document.getElementById("pass").click(); return; }
      if (key === "r") { e.preventDefault(); comment.focus(); return; }
      var button = key === "a" ? document.getElementById("accept") : byKey[e.key];
      if (!button) return;
      e.preventDefault();
      button.classList.add("pressed");
      if (button.dataset.label) fixLabel.value = button.dataset.label;
      if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
    });
  }

  // Retries: one small badge per try, its message as the tooltip (shown when there was more than one).
  function renderTries(cell, attempts) {
    if (!cell) return;
    cell.textContent = "";
    var show = attempts.length > 1 || attempts.some(function (a) { return a.state === "failed"; });
    if (!show) return;
    attempts.forEach(function (a) {
      var span = document.createElement("span");
      span.className = "try try-" + a.state;
      span.title = a.message || "";
      span.textContent = "#" + a.try_number + " " + a.state;
      cell.appendChild(span);
    });
  }

  function setupJobs() {
    var table = document.getElementById("jobs-table");
    if (!table || table.dataset.active !== "1") return;
    var note = document.getElementById("jobs-refresh-note");
    var every = Math.max(1, parseInt(table.dataset.refresh || "3", 10)) * 1000;
    function fmt(iso) {
      if (!iso) return "";
      var d = new Date(iso);
      return d.toTimeString().slice(0, 8);
    }
    function tick() {
      fetch(table.dataset.source, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          var known = {};
          data.jobs.forEach(function (job) {
            var row = table.querySelector('tr[data-job="' + job.id + '"]');
            if (!row) { known.missing = true; return; }
            row.querySelector('[data-col="status"]').innerHTML =
              '<span class="badge badge-' + job.status + '">' + job.status + "</span>";
            row.querySelector('[data-col="message"]').textContent = job.message;
            renderTries(row.querySelector('[data-col="tries"]'), job.attempts || []);
            row.querySelector('[data-col="started"]').textContent = fmt(job.started_at);
            row.querySelector('[data-col="finished"]').textContent = fmt(job.finished_at);
          });
          if (known.missing) { window.location.reload(); return; }
          if (data.active) { setTimeout(tick, every); }
          else if (note) { note.textContent = "All runs finished."; }
        })
        .catch(function () { setTimeout(tick, every * 3); });
    }
    setTimeout(tick, every);
  }

  // Pages with work in progress (batch inference) reload themselves until it is done.
  // The experiment page while it trains: new epochs join the table, the curve redraws, and the
  // page reloads once when the run ends (for its final metrics).
  function setupLiveExperiment() {
    var card = document.querySelector("[data-live-experiment]");
    if (!card || card.getAttribute("data-status") !== "running") return;
    var url = card.getAttribute("data-live-experiment");
    var table = document.querySelector('[data-live="epoch-table"] tbody');
    var chart = document.querySelector('img[data-chart="training"]');
    var shown = table ? table.querySelectorAll("tr").length : 0;
    function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }
    function num(v, digits) { return typeof v === "number" ? v.toFixed(digits) : ""; }
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (run) {
          card.querySelector('[data-live="status"]').textContent = run.status;
          card.querySelector('[data-live="message"]').textContent = run.message || "";
          var counter = card.querySelector('[data-live="epochs"]');
          if (counter) counter.textContent = run.epochs.length + " epochs so far; this page follows the run.";
          if (table && !run.metrics.cv_folds) {
            run.epochs.slice(shown).forEach(function (e) {
              var tr = document.createElement("tr");
              [String(e.epoch), num(e.train_loss, 4), num(e.val_loss, 4), num(e.metrics.f1, 3),
               num(e.metrics.roc_auc, 3), num(e.metrics.ece, 3)].forEach(function (t) { tr.appendChild(cell(t)); });
              table.appendChild(tr);
            });
          }
          if (chart && run.epochs.length !== shown && run.epochs.length > 0) {
            chart.src = chart.src.split("?")[0] + "?epochs=" + run.epochs.length;
          }
          shown = run.epochs.length;
          if (run.status !== "running") { window.location.reload(); return; }
          setTimeout(tick, 2000);
        })
        .catch(function () { setTimeout(tick, 6000); });
    }
    setTimeout(tick, 2000);
  }

  function setupReload() {
    var el = document.querySelector("[data-reload-seconds]");
    if (!el) return;
    var seconds = parseInt(el.dataset.reloadSeconds, 10);
    if (seconds > 0) setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupLabeling();
    setupReview();
    setupJobs();
    setupLiveExperiment();
    setupReload();
  });
})();
