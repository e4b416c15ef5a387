// The geocli serve page: send dropped or picked photos to /api/predict and show each record:
// the photo with its OCR boxes, the guesses on a map, the country ranking and the evidence.
// Everything from a record is set as text (textContent), never as HTML.
(function () {
  "use strict";
  const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"];
  const state = {config: null, borders: null, count: 0};
  const $ = (selector, root) => (root || document).querySelector(selector);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function percent(p) {
    return p === null || p === undefined ? "—" : (100 * p).toFixed(1) + "%";
  }

  async function start() {
    const [config, borders] = await Promise.all([
      fetch("/api/models").then((r) => r.json()), fetch("/api/borders").then((r) => r.json())]);
    state.config = config;
    state.borders = borders;
    $("#model").textContent = `model: ${config.model}` + (config.status.length ? ` — ${config.status.join("; ")}` : "");
    const drop = $("#drop"), picker = $("#picker");
    picker.addEventListener("change", () => { send(Array.from(picker.files)); picker.value = ""; });
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      send(Array.from(e.dataTransfer.files));
    });
    document.body.dataset.ready = "true";
  }

  async function send(files) {
    const max = state.config.limits.max_files;
    for (let i = 0; i < files.length; i += max) await sendBatch(files.slice(i, i + max));
  }

  async function sendBatch(files) {
    if (!files.length) return;
    const cards = files.map((file) => newCard(file));
    const results = $("#results"), first = results.firstChild;
    cards.forEach((card) => results.insertBefore(card, first));  // newest batch on top, in upload order
    const form = new FormData();
    files.forEach((file) => form.append("files", file, file.name));
    $("#status").textContent = `predicting ${files.length} photo(s)…`;
    let body;
    try {
      const response = await fetch("/api/predict", {method: "POST", body: form});
      body = await response.json();
    } catch (err) {
      body = {error: String(err)};
    }
    if (!Array.isArray(body)) {
      cards.forEach((card) => fail(card, body.error || "the server gave no records"));
      $("#status").textContent = body.error || "";
      return;
    }
    body.forEach((record, i) => show(cards[i], record));
    $("#status").textContent = `${body.length} photo(s): ${body.filter((r) => !r.ok).length} failed`;
  }

  function newCard(file) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    card.dataset.index = state.count++;
    $(".name", card).textContent = file.name;
    if (file.type.startsWith("image/")) $(".photo img", card).src = URL.createObjectURL(file);
    return card;
  }

  function fail(card, message) {
    card.classList.add("failed");
    card.dataset.state = "failed";
    $(".state", card).textContent = message;
  }

  function show(card, record) {
    card.dataset.image = record.image;
    $(".json", card).textContent = JSON.stringify(record, null, 2);
    if (!record.ok) return fail(card, record.error);
    card.dataset.state = "done";
    $(".state", card).textContent = record.reason || `${record.predictions.length} guess(es)`;
    drawBoxes(card, record.text || []);
    drawMap(card, record);
    fillGuesses(card, record.predictions || []);
    fillCountries(card, record);
    fillEvidence(card, record);
  }

  function drawBoxes(card, texts) {
    const svg = $(".boxes", card);
    for (const t of texts) {
      if (!t.box) continue;
      const polygon = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
      polygon.setAttribute("points", t.box.map(([x, y]) => `${x},${y}`).join(" "));
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${t.text} (${percent(t.confidence)})`;
      polygon.appendChild(title);
      svg.appendChild(polygon);
    }
  }

  function drawMap(card, record) {
    const map = new GeoMap($(".map", card), {tiles: state.config.tiles});
    map.setBorders(state.borders.countries);
    const colour = COLOURS[Number(card.dataset.index) % COLOURS.length];
    map.addGuesses(record, colour, card.dataset.index);
    map.fitMarkers((record.predictions || []).map((p) => [p.lat, p.lon]), 6);
  }

  function fillGuesses(card, predictions) {
    const body = $(".guesses tbody", card);
    for (const p of predictions) {
      const row = el("tr");
      [p.rank, p.country_name || p.country || "?", percent(p.probability), p.source || "",
       `${p.lat.toFixed(4)}, ${p.lon.toFixed(4)}`].forEach((v) => row.appendChild(el("td", v)));
      body.appendChild(row);
    }
  }

  function countryRanking(record) {
    if (record.country_head && record.country_head.length) {
      return {title: "Countries (country head)", rows: record.country_head.map((c) => [c.country_name || c.country, c.probability])};
    }
    const sums = new Map();
    for (const p of record.predictions || []) {
      const key = p.country_name || p.country || "?";
      sums.set(key, (sums.get(key) || 0) + (p.probability || 0));
    }
    return {title: "Countries (from the guesses)", rows: Array.from(sums.entries()).sort((a, b) => b[1] - a[1])};
  }

  function fillCountries(card, record) {
    const ranking = countryRanking(record);
    $(".countries-title", card).textContent = ranking.title;
    const body = $(".countries tbody", card);
    ranking.rows.forEach(([name, p]) => {
      const row = el("tr");
      row.appendChild(el("td", name));
      row.appendChild(el("td", percent(p)));
      body.appendChild(row);
    });
  }

  function fillEvidence(card, record) {
    const exif = record.exif || {}, dl = $(".exif", card);
    const gps = exif.gps ? `${exif.gps.lat.toFixed(5)}, ${exif.gps.lon.toFixed(5)}` : "none";
    [["EXIF GPS", gps], ["camera", exif.camera || "—"], ["taken", exif.datetime || "—"]].forEach(([k, v]) => {
      dl.appendChild(el("dt", k));
      dl.appendChild(el("dd", v));
    });
    const text = $(".text", card);
    (record.text || []).forEach((t) => text.appendChild(el("li", `${t.text} (${percent(t.confidence)})`)));
    if (!(record.text || []).length) text.appendChild(el("li", "no text read", "muted"));
    const clues = $(".evidence", card);
    (record.evidence || []).forEach((line) => clues.appendChild(el("li", line)));
    if (record.reason) clues.appendChild(el("li", record.reason, "muted"));
  }

  start().catch((err) => { $("#status").textContent = `cannot reach the geocli server: ${err}`; });
})();
