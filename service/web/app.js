// The service's map: every livrable's footprint, each storage's status and
// problems, and the tiles once zoomed in. Data comes from the service's
// own API; nothing is fetched from elsewhere unless a basemap is set.
(async function () {
  'use strict';
  const map = L.map('map').setView([46.6, 2.4], 6);
  const basemap = document.body.dataset.basemap;
  if (basemap && basemap.indexOf('{{') < 0) {
    L.tileLayer(basemap, { maxZoom: 20 }).addTo(map);
  }
  const outlines = L.featureGroup().addTo(map);
  const tiles = L.featureGroup();
  const TILE_ZOOM = 14;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const getJSON = async (url) => {
    const r = await fetch(url);
    return r.ok ? r.json() : null;
  };

  const storages = (await getJSON('/storages')) || [];
  const list = document.getElementById('storages');
  let drawn = 0;
  let problemsDrawn = 0;
  for (const s of storages) {
    const li = el('li');
    li.dataset.storage = s.id;
    li.append(el('span', 'name', s.name), el('span', 'status ' + s.status, s.status));
    if (s.progress) li.append(el('div', '', `${s.progress.done} / ${s.progress.total} dalles`));
    if (s.lastCounts) {
      const c = s.lastCounts;
      li.append(el('div', '', `${c.readable} dalles lisibles sur ${c.tiles}, ${c.problems} à corriger`));
    }
    if (s.lastError) li.append(el('div', 'error', s.lastError));
    list.append(li);

    const fc = await getJSON(`/storages/${s.id}/livrables.geojson`);
    if (fc && fc.features.length) {
      L.geoJSON(fc, {
        style: { color: '#0055a4', weight: 2, fillOpacity: 0.15, className: 'footprint' },
        onEachFeature: (f, layer) => {
          const p = f.properties;
          layer.bindPopup(el('div', '', `${p.nom} — ${p.nbDalles} dalles, ${p.epsg || 'plusieurs CRS'}`));
        },
      }).addTo(outlines);
      drawn += fc.features.length;
    }
    const report = await getJSON(`/storages/${s.id}/report`);
    for (const p of (report ? report.problems : [])) {
      if (!p.geometry) continue; // not georeferenced: nowhere to draw it
      L.geoJSON({ type: 'Feature', geometry: p.geometry, properties: p }, {
        style: { color: '#b00020', weight: 2, fillOpacity: 0.3, className: 'problem' },
        onEachFeature: (f, layer) => layer.bindPopup(el('div', '', `${p.path} : ${p.reason} (${p.detail})`)),
      }).addTo(outlines);
      problemsDrawn++;
    }
    if (report && report.problems.length) {
      const ul = el('ul', 'problems');
      for (const p of report.problems.slice(0, 20)) ul.append(el('li', '', `${p.path} : ${p.reason} (${p.detail})`));
      if (report.problems.length > 20) ul.append(el('li', '', `… et ${report.problems.length - 20} autres dans le rapport`));
      li.append(ul);
    }
  }
  document.getElementById('summary').textContent =
    `${storages.length} stockage(s), ${drawn} emprise(s) affichée(s)`;
  if (drawn) map.fitBounds(outlines.getBounds(), { maxZoom: 16 });

  // Tiles are many: loaded once, shown only when zoomed in.
  let tilesLoaded = false;
  let tileCount = 0;
  const showTiles = async () => {
    if (map.getZoom() < TILE_ZOOM) {
      map.removeLayer(tiles);
      return;
    }
    if (!tilesLoaded) {
      tilesLoaded = true;
      for (const s of storages) {
        const fc = await getJSON(`/storages/${s.id}/dalles.geojson`);
        if (!fc) continue;
        tileCount += fc.features.length;
        L.geoJSON(fc, {
          style: { color: '#2e8540', weight: 1, fillOpacity: 0.25, className: 'tile' },
          onEachFeature: (f, layer) => layer.bindPopup(el('div', '',
            `${f.properties.nomImage} — ${f.properties.typeImage}, ${f.properties.compression}, ${f.properties.resolution} cm`)),
        }).addTo(tiles);
      }
    }
    tiles.addTo(map);
  };
  map.on('zoomend', showTiles);
  await showTiles();

  document.body.dataset.footprints = String(drawn);
  document.body.dataset.problems = String(problemsDrawn);
  document.body.dataset.tiles = String(map.hasLayer(tiles) ? tileCount : 0);
  document.body.dataset.ready = 'true';
})();
