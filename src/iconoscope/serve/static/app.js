/* Iconoscope web app: progressive enhancement only (every page works without it).
   - review decisions in place (fetch POST /api/review with the session's CSRF token)
   - keyboard review: j/k or arrows move, a accepts, r rejects, o opens the record
   - concept autocomplete, live min-score value, map previews, the SPARQL page's result table
   Text from the server is always inserted with textContent, never as HTML. */
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function focusItem(item) {
    if (!item) return;
    document.querySelectorAll(".review-item.focused").forEach(function (el) { el.classList.remove("focused"); });
    item.classList.add("focused");
    item.focus({preventScroll: true});
    item.scrollIntoView({block: "nearest"});
  }

  function showResult(item, text, cls) {
    if (!item) return;
    var slot = item.querySelector(".result");
    if (!slot) return;
    slot.textContent = "";
    var span = document.createElement("span");
    span.className = "status " + cls;
    span.textContent = text;
    slot.appendChild(span);
  }

  function decideForm(form, decision) {
    var item = form.closest(".review-item");
    var annotation = form.querySelector('input[name="annotation"]').value;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    return fetch("/api/review", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({annotation: annotation, decision: decision})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    }).then(function () {
      if (item) {
        item.classList.remove("accepted", "rejected");
        item.classList.add("decided", decision);
      }
      buttons.forEach(function (b) { b.classList.toggle("on", b.value === decision); });
      showResult(item, decision, decision);
      if (item && item.closest("ul.queue")) {
        var items = Array.prototype.slice.call(document.querySelectorAll(".review-item"));
        var next = items.slice(items.indexOf(item) + 1).find(function (el) { return !el.classList.contains("decided"); });
        focusItem(next || item);
      }
    }).catch(function (e) {
      showResult(item, e.message, "error");
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("decide")) return;
    ev.preventDefault();
    var decision = ev.submitter && ev.submitter.value ? ev.submitter.value : "accepted";
    decideForm(form, decision);
  });

  document.addEventListener("keydown", function (ev) {
    if (!document.body.classList.contains("keyboard-review")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select")) return;
    var items = Array.prototype.slice.call(document.querySelectorAll(".review-item"));
    if (!items.length) return;
    var current = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".review-item") : null;
    var i = items.indexOf(current);
    if (i < 0) i = items.findIndex(function (el) { return el.classList.contains("focused"); });
    var key = ev.key;
    if (key === "j" || key === "ArrowDown") { focusItem(items[Math.min(items.length - 1, i + 1)]); ev.preventDefault(); }
    else if (key === "k" || key === "ArrowUp") { focusItem(items[Math.max(0, i - 1)]); ev.preventDefault(); }
    else if ((key === "a" || key === "r") && i >= 0) {
      var form = items[i].querySelector("form.decide");
      if (form) { decideForm(form, key === "a" ? "accepted" : "rejected"); ev.preventDefault(); }
    } else if (key === "o" && i >= 0 && items[i].dataset.record) { window.location.href = items[i].dataset.record; }
  });

  document.querySelectorAll('input[type="range"][data-output]').forEach(function (input) {
    var out = document.getElementById(input.dataset.output);
    if (!out) return;
    input.addEventListener("input", function () { out.textContent = Number(input.value).toFixed(2); });
  });

  var conceptInput = document.querySelector(".concept-input");
  if (conceptInput) {
    var timer = null;
    conceptInput.addEventListener("input", function () {
      clearTimeout(timer);
      var q = conceptInput.value.trim();
      if (q.length < 2 || /^(https?|urn):/.test(q)) return;
      timer = setTimeout(function () {
        fetch("/api/concepts?limit=15&q=" + encodeURIComponent(q)).then(function (r) {
          return r.ok ? r.json() : [];
        }).then(function (list) {
          var dl = document.getElementById("concept-options");
          dl.textContent = "";
          list.forEach(function (c) {
            var o = document.createElement("option");
            o.value = c.iri;
            o.label = (c.notation ? c.notation + " " : "") + c.label;
            dl.appendChild(o);
          });
        });
      }, 200);
    });
  }

  var preview = document.getElementById("map-preview");
  if (preview) {
    document.querySelectorAll("svg.map a").forEach(function (a) {
      a.addEventListener("mouseenter", function () {
        preview.hidden = false;
        preview.querySelector("img").src = a.dataset.thumb;
        preview.querySelector("span").textContent = a.dataset.title || "";
      });
    });
  }

  var sparqlForm = document.getElementById("sparql-form");
  if (sparqlForm) {
    var area = sparqlForm.querySelector("textarea");
    sparqlForm.querySelectorAll(".example").forEach(function (b) {
      b.addEventListener("click", function () { area.value = b.dataset.query; area.focus(); });
    });
    var out = document.getElementById("sparql-result");
    sparqlForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var fmt = sparqlForm.querySelector('select[name="format"]').value;
      var body = new URLSearchParams({query: area.value, format: fmt});
      out.textContent = "running…";
      var started = performance.now();
      fetch("/sparql", {method: "POST", body: body}).then(function (r) {
        return r.text().then(function (text) { return {ok: r.ok, status: r.status, type: r.headers.get("content-type") || "", text: text}; });
      }).then(function (res) {
        out.textContent = "";
        var info = document.createElement("p");
        info.className = "muted small";
        info.textContent = (res.ok ? "" : "HTTP " + res.status + " · ") + Math.round(performance.now() - started) + " ms";
        out.appendChild(info);
        if (res.ok && res.type.indexOf("sparql-results+json") >= 0) {
          var data = JSON.parse(res.text);
          if (data.boolean !== undefined) { var p = document.createElement("p"); p.textContent = String(data.boolean); out.appendChild(p); return; }
          var table = document.createElement("table");
          table.className = "data";
          var head = table.createTHead().insertRow();
          data.head.vars.forEach(function (v) { var th = document.createElement("th"); th.textContent = v; head.appendChild(th); });
          var tb = table.createTBody();
          data.results.bindings.forEach(function (b) {
            var row = tb.insertRow();
            data.head.vars.forEach(function (v) {
              var cell = row.insertCell();
              if (b[v]) { cell.textContent = b[v].value; if (b[v]["xml:lang"]) cell.title = "@" + b[v]["xml:lang"]; }
            });
          });
          info.textContent += " · " + data.results.bindings.length + " rows";
          out.appendChild(table);
        } else {
          var pre = document.createElement("pre");
          pre.textContent = res.text;
          out.appendChild(pre);
        }
      }).catch(function (e) { out.textContent = e.message; });
    });
  }

  if (document.body.classList.contains("keyboard-review") && document.querySelector("ul.queue .review-item")) {
    focusItem(document.querySelector("ul.queue .review-item"));
  }
})();
