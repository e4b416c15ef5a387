// GeoMap: a small offline map for geocli's pages. Web Mercator drawn in SVG: land and country
// borders from the basemap geocli ships, markers for guesses, drag to pan, wheel / buttons to zoom.
// Raster tiles appear only when a tile URL template (such as host/{z}/{x}/{y}.png) is given.
// Text is always set with textContent, never parsed as HTML.
(function (global) {
  "use strict";
  const TILE = 256, MAX_LAT = 85.0511, SVG = "http://www.w3.org/2000/svg";

  function project(lon, lat) {  // world pixel at zoom 0: x, y in [0, 256]
    const clamped = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
    const s = Math.sin(clamped * Math.PI / 180);
    return [TILE * (lon + 180) / 360, TILE * (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI))];
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function ringPath(ring) {
    return ring.map(([lon, lat], i) => {
      const [x, y] = project(lon, lat);
      return (i ? "L" : "M") + x.toFixed(3) + " " + y.toFixed(3);
    }).join("") + "Z";
  }

  class GeoMap {
    constructor(element, options) {
      options = options || {};
      this.element = element;
      this.tileUrl = options.tiles || null;
      this.scale = 2;
      this.center = project(0, 20);
      this.markers = [];
      element.classList.add("geomap");
      if (this.tileUrl) element.classList.add("geomap-tiled");
      this.root = svg("svg", {class: "geomap-svg", width: "100%", height: "100%"}, element);
      this.tileLayer = svg("g", {class: "geomap-tiles"}, this.root);
      this.world = svg("g", {class: "geomap-world"}, this.root);
      this.markerLayer = svg("g", {class: "geomap-markers"}, this.root);
      this.popup = document.createElement("div");
      this.popup.className = "geomap-popup";
      this.popup.hidden = true;
      element.appendChild(this.popup);
      this._controls(options.attribution);
      this._interact();
      new ResizeObserver(() => this.render()).observe(element);
    }

    setBorders(countries) {
      for (const country of countries) {
        const path = svg("path", {class: "geomap-country", d: country.rings.map(ringPath).join("")}, this.world);
        svg("title", {}, path).textContent = country.name;
      }
      this.render();
    }

    clearMarkers() {
      this.markers = [];
      this.markerLayer.replaceChildren();
      this.popup.hidden = true;
    }

    addMarker(lat, lon, opts) {
      opts = opts || {};
      const node = svg("circle", {class: "geomap-marker", r: opts.radius || 6, fill: opts.color || "#e6194b"},
                       this.markerLayer);
      for (const [k, v] of Object.entries(opts.data || {})) node.dataset[k] = v;
      if (opts.label) svg("title", {}, node).textContent = opts.label;
      node.addEventListener("click", (event) => { event.stopPropagation(); this._show(node, opts.label || ""); });
      this.markers.push({node, xy: project(lon, lat)});
      this._place(this.markers[this.markers.length - 1]);
      return node;
    }

    // Markers for one prediction record's guesses (geocli's record format); larger = more probable.
    addGuesses(record, color, index) {
      const name = String(record.image || "").split(/[\\/]/).pop();
      return (record.predictions || []).map((p) => {
        const prob = p.probability === null || p.probability === undefined ? null : Number(p.probability);
        const label = `${name} #${p.rank}: ${p.country_name || p.country || "?"}` +
          (prob === null ? "" : ` ${(100 * prob).toFixed(1)}%`) + `\n${p.lat.toFixed(4)}, ${p.lon.toFixed(4)}` +
          (p.source ? ` (${p.source})` : "");
        return this.addMarker(p.lat, p.lon, {color, label, radius: 5 + 12 * (prob === null ? 0.3 : prob),
                                             data: {image: index, rank: p.rank}});
      });
    }

    // Frame every marker (at least ``minSpan`` degrees each way); the world when there are none.
    fitMarkers(latlons, minSpan) {
      if (!latlons.length) return this.fit(-60, -180, 80, 180);
      const lats = latlons.map((p) => p[0]), lons = latlons.map((p) => p[1]);
      let [s, n, w, e] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
      const padLat = Math.max((n - s) * 0.2, ((minSpan || 6) - (n - s)) / 2, 0);
      const padLon = Math.max((e - w) * 0.2, ((minSpan || 6) - (e - w)) / 2, 0);
      this.fit(Math.max(s - padLat, -80), Math.max(w - padLon, -180), Math.min(n + padLat, 84), Math.min(e + padLon, 180));
    }

    fit(south, west, north, east) {
      const [x0, y1] = project(west, south), [x1, y0] = project(east, north);
      const w = this.element.clientWidth || 600, h = this.element.clientHeight || 400;
      this.center = [(x0 + x1) / 2, (y0 + y1) / 2];
      this.scale = Math.max(1, Math.min(w / Math.max(x1 - x0, 1e-6), h / Math.max(y1 - y0, 1e-6), 1 << 18));
      this.render();
    }

    zoomBy(factor, sx, sy) {
      const w = this.element.clientWidth, h = this.element.clientHeight;
      sx = sx === undefined ? w / 2 : sx;
      sy = sy === undefined ? h / 2 : sy;
      const wx = this.center[0] + (sx - w / 2) / this.scale, wy = this.center[1] + (sy - h / 2) / this.scale;
      this.scale = Math.max(1, Math.min(this.scale * factor, 1 << 18));
      this.center = [wx - (sx - w / 2) / this.scale, wy - (sy - h / 2) / this.scale];
      this.render();
    }

    toScreen([x, y]) {
      const w = this.element.clientWidth, h = this.element.clientHeight;
      return [(x - this.center[0]) * this.scale + w / 2, (y - this.center[1]) * this.scale + h / 2];
    }

    render() {
      const [tx, ty] = this.toScreen([0, 0]);
      this.world.setAttribute("transform", `translate(${tx} ${ty}) scale(${this.scale})`);
      this.markers.forEach((m) => this._place(m));
      if (this.tileUrl) this._tiles();
    }

    _place(marker) {
      const [x, y] = this.toScreen(marker.xy);
      marker.node.setAttribute("cx", x.toFixed(1));
      marker.node.setAttribute("cy", y.toFixed(1));
    }

    _show(node, text) {
      this.popup.textContent = text;
      this.popup.hidden = false;
      this.popup.style.left = node.getAttribute("cx") + "px";
      this.popup.style.top = node.getAttribute("cy") + "px";
    }

    _tiles() {
      const z = Math.max(0, Math.min(19, Math.round(Math.log2(this.scale)))), n = 1 << z;
      const size = TILE * this.scale / n, [ox, oy] = this.toScreen([0, 0]);
      const w = this.element.clientWidth, h = this.element.clientHeight;
      this.tileLayer.replaceChildren();
      for (let x = Math.max(0, Math.floor(-ox / size)); x < Math.min(n, Math.ceil((w - ox) / size)); x++) {
        for (let y = Math.max(0, Math.floor(-oy / size)); y < Math.min(n, Math.ceil((h - oy) / size)); y++) {
          const href = this.tileUrl.replace("{z}", z).replace("{x}", x).replace("{y}", y).replace("{s}", "abc"[(x + y) % 3]);
          svg("image", {href, x: ox + x * size, y: oy + y * size, width: size + 0.5, height: size + 0.5},
              this.tileLayer);
        }
      }
    }

    _controls(attribution) {
      const box = document.createElement("div");
      box.className = "geomap-controls";
      for (const [label, factor] of [["+", 2], ["\u2212", 0.5]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.addEventListener("click", () => this.zoomBy(factor));
        box.appendChild(button);
      }
      this.element.appendChild(box);
      const credit = document.createElement("div");
      credit.className = "geomap-credit";
      credit.textContent = attribution || "Borders: Natural Earth";
      this.element.appendChild(credit);
    }

    _interact() {
      let drag = null;
      this.root.addEventListener("pointerdown", (e) => {
        drag = {x: e.clientX, y: e.clientY, center: this.center.slice()};
        this.root.setPointerCapture(e.pointerId);
      });
      this.root.addEventListener("pointermove", (e) => {
        if (!drag) return;
        this.center = [drag.center[0] - (e.clientX - drag.x) / this.scale,
                       drag.center[1] - (e.clientY - drag.y) / this.scale];
        this.render();
      });
      this.root.addEventListener("pointerup", () => { drag = null; });
      this.root.addEventListener("click", () => { this.popup.hidden = true; });
      this.root.addEventListener("wheel", (e) => {
        e.preventDefault();
        const box = this.root.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - box.left, e.clientY - box.top);
      }, {passive: false});
    }
  }

  global.GeoMap = GeoMap;
})(window);
