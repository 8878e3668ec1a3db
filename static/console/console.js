/* Fleetflow console behaviour. No inline script anywhere (the pages run under a Content Security
   Policy): pages carry data-* attributes, this file finds them.
   - [data-live-ws]: websocket to the instance's group; each instance.changed event triggers
     "instance-changed" on <body>, which the htmx parts of the page listen to.
   - #diagram: bpmn-js viewer with per-element overlays (active, completed, incident counts),
     incident/active markers and taken sequence flows; models without diagram data are laid out
     with bpmn-auto-layout first.
   - [data-charts]: uPlot charts of the dashboard.
   - [data-close-dialog], [data-tree-toggle]: dialog closing, tree folding. */
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  // -- dialog ----------------------------------------------------------------------------------
  function closeDialog() { var dialog = byId("dialog"); if (dialog) { dialog.innerHTML = ""; } }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-dialog]")) { closeDialog(); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { closeDialog(); }
  });

  // -- tree ------------------------------------------------------------------------------------
  // The first click loads a node's children (htmx, "click once"); later clicks only fold them.
  // Capture phase, so a loaded node's click never reaches htmx again.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-tree-toggle]");
    if (!toggle || !toggle.dataset.loaded) { return; }
    event.stopPropagation();
    event.preventDefault();
    var list = toggle.parentElement.querySelector(":scope > ul.children");
    if (!list) { return; }
    list.hidden = !list.hidden;
    toggle.classList.toggle("open", !list.hidden);
  }, true);
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.matches && target.matches("ul.children")) {
      var toggle = target.parentElement.querySelector(":scope > [data-tree-toggle]");
      if (toggle) { toggle.dataset.loaded = "1"; toggle.classList.add("open"); }
      target.hidden = false;
    }
  });

  // The tree keeps what the operator expanded; on a change only the state labels of the nodes on
  // screen are fetched again.
  function refreshTreeStates() {
    var tree = byId("tree");
    if (!tree || !tree.dataset.statesUrl) { return; }
    var nodes = Array.prototype.slice.call(tree.querySelectorAll("li.node[data-key]"), 0, 500);
    if (!nodes.length) { return; }
    var keys = nodes.map(function (node) { return node.dataset.key; });
    fetch(tree.dataset.statesUrl + "?keys=" + keys.join(","), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (states) {
        nodes.forEach(function (node) {
          var state = states[node.dataset.key];
          if (!state) { return; }
          var label = node.querySelector(":scope > [data-tree-state]");
          if (label) { label.textContent = state.label; label.className = "state-" + state.state; }
          var badgeHolder = node.querySelector(":scope > [data-tree-badge]");
          if (badgeHolder) {
            badgeHolder.textContent = "";
            if (state.incident || state.subtreeIncident) {
              var badge = document.createElement("span");
              badge.className = state.incident ? "badge bad" : "badge warn";
              badge.textContent = state.incident ? "incident" : "incident below";
              badgeHolder.appendChild(badge);
            }
          }
        });
        tree.dataset.statesRefreshed = String(Date.now());
      })
      .catch(function () { /* the next change retries */ });
  }
  document.addEventListener("fleetflow:instance-changed", refreshTreeStates);

  // -- live updates ----------------------------------------------------------------------------
  function connectLive(indicator) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + indicator.dataset.liveWs;
    var delay = 500;
    var pending = null;
    function changed() {
      // Several records of one batch arrive together: one refresh for them all.
      if (pending) { return; }
      pending = window.setTimeout(function () {
        pending = null;
        if (window.htmx) { window.htmx.trigger(document.body, "instance-changed"); }
        document.dispatchEvent(new CustomEvent("fleetflow:instance-changed"));
      }, 30);
    }
    function open() {
      var socket = new WebSocket(url);
      socket.addEventListener("open", function () {
        indicator.textContent = "live";
        indicator.className = "live-status on";
        // Whatever changed while the socket was down is fetched now.
        if (delay > 500) { changed(); }
        delay = 500;
      });
      socket.addEventListener("message", function (message) {
        var data = null;
        try { data = JSON.parse(message.data); } catch (error) { return; }
        if (data && data.type === "instance.changed") {
          indicator.dataset.lastEvent = String(Date.now());
          changed();
        }
      });
      socket.addEventListener("close", function () {
        indicator.textContent = "reconnecting…";
        indicator.className = "live-status off";
        window.setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      });
    }
    open();
  }

  // -- diagram ---------------------------------------------------------------------------------
  var STATES = ["active", "completed", "incidents", "terminated"];
  var MARKERS = ["has-incident", "is-active", "is-completed", "is-taken"];

  function refreshOverlays(container) {
    var viewer = container.fleetflowViewer;
    if (!viewer) { return Promise.resolve(); }
    return fetch(container.dataset.statsUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("statistics: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var overlays = viewer.get("overlays");
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        overlays.remove({ type: "fleetflow-state" });
        (container.fleetflowMarked || []).forEach(function (pair) { canvas.removeMarker(pair[0], pair[1]); });
        var marked = [];
        var stats = data.elements || {};
        Object.keys(stats).forEach(function (elementId) {
          var shape = registry.get(elementId);
          if (!shape || shape.type === "bpmn:Process") { return; }
          var counts = stats[elementId];
          var badge = document.createElement("div");
          badge.className = "state-badges";
          STATES.forEach(function (state) {
            if (counts[state]) {
              var span = document.createElement("span");
              span.className = "badge-count " + state;
              span.title = counts[state] + " " + state;
              span.textContent = String(counts[state]);
              badge.appendChild(span);
            }
          });
          if (badge.childNodes.length) {
            overlays.add(elementId, "fleetflow-state", { position: { bottom: 8, left: -6 }, html: badge });
          }
          var marker = counts.incidents ? "has-incident" : counts.active ? "is-active" : counts.completed ? "is-completed" : null;
          if (marker) { canvas.addMarker(elementId, marker); marked.push([elementId, marker]); }
        });
        // A flow counts as taken when its source completed and its target was entered: what the
        // element instances say (the importer keeps no SEQUENCE_FLOW_TAKEN rows).
        registry.filter(function (element) { return element.type === "bpmn:SequenceFlow"; }).forEach(function (flow) {
          var source = flow.source && stats[flow.source.id];
          var target = flow.target && stats[flow.target.id];
          if (source && target && source.completed && (target.active || target.completed || target.incidents || target.terminated)) {
            canvas.addMarker(flow.id, "is-taken");
            marked.push([flow.id, "is-taken"]);
          }
        });
        container.fleetflowMarked = marked;
        container.dataset.overlaysReady = "1";
      });
  }

  function showDiagram(container) {
    if (!window.BpmnJS) { container.textContent = "The diagram viewer did not load."; return; }
    fetch(container.dataset.diagramUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) {
        if (xml.indexOf("BPMNDiagram") === -1 && window.BpmnAutoLayout) {
          container.dataset.autoLayout = "1";
          return window.BpmnAutoLayout.layoutProcess(xml);
        }
        return xml;
      })
      .then(function (xml) {
        var viewer = new window.BpmnJS({ container: container });
        container.fleetflowViewer = viewer;
        return viewer.importXML(xml).then(function () {
          viewer.get("canvas").zoom("fit-viewport");
          return refreshOverlays(container);
        });
      })
      .catch(function (error) {
        container.classList.add("failed");
        container.textContent = "The diagram could not be shown: " + error.message;
      });
    document.addEventListener("fleetflow:instance-changed", function () {
      refreshOverlays(container).catch(function () { /* the next change retries */ });
    });
  }

  // -- charts ----------------------------------------------------------------------------------
  var COLOURS = { started: "#2f6fdf", finished: "#1f9d55", incidents_opened: "#d6453d", incidents_resolved: "#8a8f98", lag: "#a86500" };

  function showCharts(root) {
    if (!window.uPlot) { return; }
    var plots = {};
    var lagTimes = [];
    var lagValues = [];
    function draw(name, columns, names) {
      var target = root.querySelector('[data-chart="' + name + '"]');
      if (!target) { return; }
      if (plots[name]) { plots[name].setData(columns); fitTimeAxis(plots[name], columns[0]); return; }
      var series = [{}].concat(names.map(function (label) {
        return { label: label.replace("_", " "), stroke: COLOURS[label] || "#333", width: 2, points: { show: false } };
      }));
      var options = {
        width: Math.max(280, target.clientWidth || 360),
        height: 180,
        series: series,
        scales: { x: { time: true } }
      };
      plots[name] = new window.uPlot(options, columns, target);
      target.uplot = plots[name];  // for the browser tests
      fitTimeAxis(plots[name], columns[0]);
    }
    // With fewer than two samples (nothing imported yet, or the lag chart right after the page
    // opened) uPlot pads the time axis by years; show the last five minutes instead.
    function fitTimeAxis(plot, times) {
      if (times.length > 1) { return; }
      var end = times.length ? times[0] : Date.now() / 1000;
      plot.setScale("x", { min: end - 300, max: end + 10 });
    }
    function load() {
      fetch(root.dataset.seriesUrl, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          draw("instances", [data.times, data.series.started, data.series.finished], ["started", "finished"]);
          draw("incidents", [data.times, data.series.incidents_opened, data.series.incidents_resolved], ["incidents_opened", "incidents_resolved"]);
          lagTimes.push(data.now);
          lagValues.push(data.importLagSeconds);
          if (lagTimes.length > 360) { lagTimes.shift(); lagValues.shift(); }
          draw("lag", [lagTimes.slice(), lagValues.slice()], ["lag"]);
          root.dataset.chartsReady = "1";
        })
        .catch(function () { /* retried on the next tick */ });
    }
    load();
    window.setInterval(load, 10000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var indicator = document.querySelector("[data-live-ws]");
    if (indicator) { connectLive(indicator); }
    var diagram = byId("diagram");
    if (diagram) { showDiagram(diagram); }
    var charts = document.querySelector("[data-charts]");
    if (charts) { showCharts(charts); }
  });
})();
