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
  // A scale bar in metres: owners judge a delivery's extent by it.
  L.control.scale({ imperial: false, position: 'bottomleft' }).addTo(map);
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

  // The API's machine fields are English; what the owner reads is French,
  // with what to do about it.
  const STATUS = { idle: 'à jour', scanning: 'analyse en cours', queued: 'en attente' };
  const REASON = {
    empty: 'dalle vide : renvoyez le fichier',
    corrupt: 'fichier illisible ou tronqué : renvoyez le fichier complet',
    not_georeferenced: 'aucun géoréférencement : ajoutez le fichier de calage (.tfw, .j2w) ou réécrivez la dalle géoréférencée',
    no_crs: 'aucun système de coordonnées : ajoutez le .prj ou réécrivez le GeoTIFF avec EPSG:2154',
    misplaced: 'dalle placée hors de sa zone : vérifiez le code EPSG et le géoréférencement',
    unreachable: "le stockage n'a pas servi le fichier : vérifiez les droits et relancez l'analyse",
  };
  const num = (v, d) => Number(v).toLocaleString('fr-FR', { maximumFractionDigits: d || 0 });
  const WARNING = {
    off_grid: (w) => `hors de la grille (décalée de ${num(w.offset ? w.offset[0] : 0, 2)} m en X, ${num(w.offset ? w.offset[1] : 0, 2)} m en Y) : vérifiez son géoréférencement`,
    overlap: (w) => `recouvre ${num(w.areaM2)} m² de ${w.other} : une des deux est mal placée`,
    duplicate: (w) => `même emprise que ${w.other} : dalle livrée deux fois ?`,
    name_mismatch: (w) => `son nom ne correspond pas à sa position (attendu : ${w.expected}) : renommez-la ou corrigez son géoréférencement`,
    resolution: () => 'résolution différente du reste de la livraison : vérifiez la dalle',
    mixed: (w) => `la livraison mélange ${Object.entries(w.counts || {}).map(([k, n]) => `${k} (${n})`).join(', ')}`,
    size_outlier: (w) => `beaucoup plus petite que ses voisines (${num((w.ratio || 0) * 100, 1)} % de la médiane) : dalle en grande partie vide ?`,
    missing: () => 'dalle manquante dans l\'emprise : livrez-la',
  };
  const problemText = (p) => `${p.path} : ${REASON[p.reason] || 'problème'}`;
  const warningText = (w) => `${w.path ? w.path + ' : ' : ''}${(WARNING[w.kind] || (() => 'à vérifier'))(w)}`;

  const storages = (await getJSON('/storages')) || [];
  const list = document.getElementById('storages');
  let drawn = 0;
  let problemsDrawn = 0;
  let warningsDrawn = 0;
  for (const s of storages) {
    const li = el('li');
    li.dataset.storage = s.id;
    li.append(el('span', 'name', s.name), el('span', 'status ' + s.status, STATUS[s.status] || s.status));
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
        onEachFeature: (f, layer) => layer.bindPopup(el('div', '', `${problemText(p)} (détail technique : ${p.detail})`)),
      }).addTo(outlines);
      problemsDrawn++;
    }
    if (report && report.problems.length) {
      const ul = el('ul', 'problems');
      for (const p of report.problems.slice(0, 20)) ul.append(el('li', '', problemText(p)));
      if (report.problems.length > 20) ul.append(el('li', '', `… et ${report.problems.length - 20} autres dans le rapport`));
      li.append(ul);
    }
    const warnings = (report && report.warnings) || [];
    for (const w of warnings) {
      if (!w.geometry) continue;
      const layer = L.geoJSON({ type: 'Feature', geometry: w.geometry, properties: {} }, {
        style: { color: '#d35400', weight: 2, fillOpacity: 0.2, dashArray: w.kind === 'missing' ? '4 4' : null, className: 'warning' },
        onEachFeature: (f, l) => l.bindPopup(el('div', '', warningText(w))),
      }).addTo(outlines);
      w.layer = layer;
      warningsDrawn++;
    }
    if (warnings.length) {
      const ul = el('ul', 'warnings');
      for (const w of warnings.slice(0, 20)) {
        const item = el('li', 'warning-' + w.kind, warningText(w));
        if (w.layer) item.addEventListener('click', () => map.fitBounds(w.layer.getBounds(), { maxZoom: 18 }));
        ul.append(item);
      }
      const total = Object.values(report.warningsByKind || {}).reduce((a, b) => a + b, 0);
      if (total > 20) ul.append(el('li', '', `… et ${total - 20} autres à vérifier dans le rapport`));
      li.append(el('div', 'warnings-title', `${total} point(s) à vérifier (dalles conservées)`), ul);
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
  document.body.dataset.warnings = String(warningsDrawn);
  document.body.dataset.tiles = String(map.hasLayer(tiles) ? tileCount : 0);
  document.body.dataset.ready = 'true';
})();
