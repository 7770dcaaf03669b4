// The service's map: every livrable's footprint, each storage's status,
// problems and warnings, and the tiles once zoomed in, fetched by view
// from each storage's dalles.fgb (HTTP ranges on its spatial index). Data
// comes from the service's own API; only the basemaps' tiles come from
// elsewhere, from the hosts the operator configured.
//
// The API's machine fields are English; everything a person reads here
// is French, with what to do about it. The page's state for tests and
// benchmarks is on <body>'s data attributes (data-ready, data-view…).
//
// The same page is one delivery's (/livraisons/{id}: body data-storage
// set): that storage alone, its lists longer, its missing tiles with
// their position and neighbours, the CSV report; opened with the
// storage's share key (?cle=…, data-shared), a download link per
// problem tile.
(async function () {
  'use strict';
  const body = document.body;
  const TILE_ZOOM = 14;
  const only = body.dataset.storage || ''; // one delivery's page
  const shareKey = only && body.dataset.shared === 'true' ? new URLSearchParams(location.search).get('cle') : null;
  // How many tiles a list shows before "… et N autres": the map's panel
  // is an overview, a delivery's page the owner's to-do list.
  const LISTED = only ? 100 : 10;
  // Before TILE_ZOOM the tiles are too small to see; past it a view holds
  // a few thousand at most.

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const num = (v, d) => Number(v).toLocaleString('fr-FR', { maximumFractionDigits: d || 0 });
  const plural = (n, one, many) => `${num(n)} ${n > 1 ? many : one}`;
  const date = (s) => new Date(s).toLocaleString('fr-FR', { dateStyle: 'medium', timeStyle: 'short' });
  const getJSON = async (url, options) => {
    try {
      const r = await fetch(url, options);
      return r.ok ? await r.json() : null;
    } catch (e) {
      return null;
    }
  };
  const link = (href, text, cls) => {
    const a = el('a', cls || '', text);
    a.href = href;
    return a;
  };

  // --- The map, its basemaps, scale and controls, in French.
  const map = L.map('map', { maxZoom: 21, zoomControl: false });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  L.control.zoom({ zoomInTitle: 'Zoomer', zoomOutTitle: 'Dézoomer' }).addTo(map);
  // A scale bar in metres: owners judge a delivery's extent by it.
  L.control.scale({ metric: true, imperial: false, position: 'bottomleft' }).addTo(map);
  map.on('popupopen', (e) => {
    const close = e.popup.getElement() && e.popup.getElement().querySelector('.leaflet-popup-close-button');
    if (close) close.setAttribute('aria-label', 'Fermer');
  });

  let basemaps = [];
  try {
    basemaps = JSON.parse(body.dataset.basemaps || '[]');
  } catch (e) {
    basemaps = [];
  }
  if (!Array.isArray(basemaps)) basemaps = [];
  const notice = document.getElementById('notice');
  const tileStats = { loaded: 0, errors: 0 };
  const baseLayers = {};
  basemaps.forEach((b, i) => {
    const layer = L.tileLayer(b.url, {
      maxZoom: 21, maxNativeZoom: b.maxNativeZoom || 19, attribution: escapeHTML(b.attribution || ''),
    });
    // Tiles that fail leave the map usable: the page says so, once.
    layer.on('tileload', () => { body.dataset.basemapTiles = String(++tileStats.loaded); });
    layer.on('tileerror', () => {
      body.dataset.basemapErrors = String(++tileStats.errors);
      if (tileStats.errors >= 3 && !tileStats.loaded) {
        notice.hidden = false;
        notice.textContent = `Fond de carte « ${b.name} » indisponible : la carte reste utilisable sans.`;
      }
    });
    baseLayers[escapeHTML(b.name)] = layer;
    if (i === 0) layer.addTo(map);
  });
  if (basemaps.length > 1) L.control.layers(baseLayers, null, { position: 'topright' }).addTo(map);
  body.dataset.basemaps = String(basemaps.length);

  // The view can be given and shared in the address: #zoom/lat/lon.
  const viewFromHash = () => {
    const m = /^#(\d{1,2}(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(location.hash);
    if (!m) return null;
    const [z, lat, lon] = m.slice(1).map(Number);
    if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    return { center: L.latLng(lat, lon), zoom: Math.min(z, 21) };
  };
  const hashOf = () => {
    const c = map.getCenter();
    return `#${map.getZoom()}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`;
  };

  // --- What the owner reads: statuses, problems and warnings in French,
  // each with what to do.
  const STATUS = { idle: 'en attente', queued: 'analyse demandée', scanning: 'analyse en cours', failed: "échec de l'analyse" };
  const REASON = {
    empty: 'dalle vide : renvoyez le fichier',
    corrupt: 'fichier illisible ou tronqué : renvoyez le fichier complet',
    not_georeferenced: 'aucun géoréférencement : ajoutez le fichier de calage (.tfw/.j2w) ou réécrivez la dalle avec son géoréférencement',
    no_crs: 'aucun système de coordonnées : ajoutez le .prj ou réécrivez le GeoTIFF avec EPSG:2154',
    misplaced: 'dalle placée hors de sa zone : vérifiez le code EPSG',
    unreachable: "le stockage n'a pas servi le fichier : vérifiez les droits et relancez",
  };
  const reasonText = (r) => REASON[r] || 'problème non identifié : voyez le rapport';
  const problemText = (p) => `${p.path || 'dalle'} : ${reasonText(p.reason)}`;
  const KIND = {
    off_grid: 'hors de la grille', overlap: 'recouvrements', duplicate: 'doublons', name_mismatch: 'noms sans rapport avec la position',
    resolution: 'résolution différente', mixed: 'livraison hétérogène', size_outlier: 'tailles anormales', missing: 'dalles manquantes',
  };
  const KIND_ORDER = Object.keys(KIND);
  // A missing tile's expected name: the quality check puts it in path.
  const missingName = (w) => w.expected || w.path || '';
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const WARNING = {
    off_grid: (w) => {
      const o = Array.isArray(w.offset) && w.offset.length === 2 && w.offset.every(isNum)
        ? ` (décalée de ${num(w.offset[0], 2)} m en X et ${num(w.offset[1], 2)} m en Y)` : '';
      return `hors de la grille de la livraison${o} : vérifiez son géoréférencement`;
    },
    overlap: (w) => `recouvre ${isNum(w.areaM2) ? num(w.areaM2) + ' m² de ' : ''}${w.other || 'une autre dalle'} : l'une des deux est mal placée`,
    duplicate: (w) => `même emprise que ${w.other || 'une autre dalle'} : dalle livrée deux fois ?`,
    name_mismatch: (w) => `son nom ne correspond pas à sa position${w.expected ? ` (attendu : ${w.expected})` : ''} : renommez-la ou corrigez son géoréférencement`,
    resolution: () => 'résolution différente du reste de la livraison : vérifiez la dalle',
    mixed: (w) => {
      const c = w.counts && typeof w.counts === 'object' ? Object.entries(w.counts).sort((a, b) => b[1] - a[1]) : [];
      return `la livraison mélange ${c.length ? c.map(([k, n]) => `${k} (${num(n)})`).join(', ') : 'plusieurs formats'} : harmonisez-la`;
    },
    size_outlier: (w) => `beaucoup plus petite que ses voisines${isNum(w.ratio) ? ` (${num(w.ratio * 100, 1)} % de la médiane)` : ''} : dalle en grande partie vide ?`,
    missing: (w) => `dalle manquante${missingName(w) ? ` : ${missingName(w)}` : ''} : livrez-la`,
  };
  const warningText = (w) => {
    const say = WARNING[w.kind];
    if (w.kind === 'missing') return say(w);
    return `${w.path ? w.path + ' : ' : ''}${say ? say(w) : 'à vérifier : voyez le rapport'}`;
  };

  // --- The storages: footprints (SVG), problems and warnings (canvas: a
  // delivery may have thousands), listed in the panel.
  const outlines = L.featureGroup().addTo(map);
  const marks = L.canvas({ padding: 0.2 });
  const overlays = L.featureGroup().addTo(map);
  const list = document.getElementById('storages');
  const listed = only ? [await getJSON(`/storages/${encodeURIComponent(only)}`)] : await getJSON('/storages');
  const storages = Array.isArray(listed) ? listed.filter((s) => s && typeof s === 'object') : [];
  const zoomTo = (layer) => map.fitBounds(layer.getBounds(), { maxZoom: 18 });
  let drawn = 0;
  let problemsDrawn = 0;
  let warningsDrawn = 0;

  // shape draws a report's geometry on the overlays; a geometry Leaflet
  // cannot read is left undrawn, never a broken page.
  const shape = (geometry, options) => {
    try {
      return L.geoJSON({ type: 'Feature', geometry, properties: {} }, options).addTo(overlays);
    } catch (e) {
      console.warn('géométrie illisible', geometry, e);
      return null;
    }
  };
  const addItem = (ul, text, layer) => {
    const li = el('li', layer ? 'zoomable' : '', text);
    if (layer) {
      li.title = 'Cliquez pour y aller';
      li.addEventListener('click', () => zoomTo(layer));
    }
    ul.append(li);
    return li;
  };

  const showStorage = async (s) => {
    const li = el('li');
    li.dataset.storage = s.id;
    const status = s.status === 'idle' && s.lastError ? 'failed' : s.status;
    li.append(el('span', 'name', s.name), el('span', 'status ' + status, STATUS[status] || 'état inconnu'));
    if (s.progress) li.append(el('div', '', `${num(s.progress.done)} / ${plural(s.progress.total, 'dalle lue', 'dalles lues')}`));
    if (s.lastCounts) {
      const c = s.lastCounts;
      li.append(el('div', '', `${num(c.readable)} ${c.readable > 1 ? 'dalles lisibles' : 'dalle lisible'} sur ${num(c.tiles)}, ${num(c.problems)} à corriger`));
    }
    if (s.lastSuccessfulScan) li.append(el('div', 'when', `dernière analyse réussie : ${date(s.lastSuccessfulScan)}`));
    if (s.lastError) {
      const said = s.lastProblem && typeof s.lastProblem.message === 'string' && s.lastProblem.message;
      li.append(el('div', 'error', said ? `La dernière analyse a échoué : ${said}`
        : "La dernière analyse a échoué : vérifiez l'adresse du stockage et ses droits d'accès, puis relancez-la."));
      const d = el('details', 'technical');
      d.append(el('summary', '', 'détail technique'), el('code', '', s.lastError));
      li.append(d);
    }
    const id = encodeURIComponent(s.id);
    const links = el('div', 'links');
    if (only) links.append(link(`/storages/${id}/problemes.csv`, 'Télécharger le rapport (CSV, pour un tableur)', 'csv'), ' · ', link('/', 'Carte de toutes les livraisons'));
    else links.append(link(`/livraisons/${id}`, 'Page de la livraison', 'delivery'), ' · ', link(`/storages/${id}/problemes.csv`, 'rapport CSV', 'csv'));
    li.append(links);
    list.append(li);
    s.li = li;

    const [fc, report] = await Promise.all([getJSON(`/storages/${s.id}/livrables.geojson`), getJSON(`/storages/${s.id}/report`)]);
    if (fc && Array.isArray(fc.features) && fc.features.length) {
      const layer = L.geoJSON(fc, {
        style: { color: '#0055a4', weight: 2, fillOpacity: 0.15, className: 'footprint' },
        onEachFeature: (f, l) => {
          const p = f.properties || {};
          l.bindPopup(() => el('div', '', `${p.nom || s.name} — ${plural(p.nbDalles || 0, 'dalle', 'dalles')}, ${p.epsg || 'plusieurs systèmes de coordonnées'}`));
        },
      }).addTo(outlines);
      s.bounds = layer.getBounds();
      drawn += fc.features.length;
    }
    if (!report) return;

    const problems = (Array.isArray(report.problems) ? report.problems : []).filter((p) => p && typeof p === 'object');
    const problemLayers = problems.map((p) => {
      if (!p.geometry) return null; // not georeferenced: nowhere to draw it
      const layer = shape(p.geometry, {
        renderer: marks, style: { color: '#b00020', weight: 2, fillOpacity: 0.3 },
        onEachFeature: (f, l) => l.bindPopup(() => {
          const d = el('div', '', problemText(p));
          if (p.detail) d.append(el('div', 'technical', `détail technique : ${p.detail}`));
          return d;
        }),
      });
      if (layer) problemsDrawn++;
      return layer;
    });
    const problemItems = [];
    if (problems.length) {
      // By reason, each with what to do, then the tiles concerned.
      li.append(el('div', 'problems-title', `${plural(problems.length, 'dalle', 'dalles')} à corriger`));
      const byReason = {};
      problems.forEach((p, i) => (byReason[p.reason] = byReason[p.reason] || []).push([p, problemLayers[i]]));
      const order = Object.keys(REASON);
      for (const r of Object.keys(byReason).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))) {
        const ul = el('ul', 'problems');
        ul.append(el('li', 'kind', `${reasonText(r)} (${num(byReason[r].length)})`));
        for (const [p, layer] of byReason[r].slice(0, LISTED)) problemItems.push([p.path, addItem(ul, p.path || 'dalle sans nom', layer)]);
        if (byReason[r].length > LISTED) ul.append(el('li', 'more', `… et ${num(byReason[r].length - LISTED)} autres dans le rapport`));
        li.append(ul);
      }
    }

    const warnings = (Array.isArray(report.warnings) ? report.warnings : []).filter((w) => w && typeof w === 'object');
    const byKind = report.warningsByKind && typeof report.warningsByKind === 'object' ? report.warningsByKind : {};
    const groups = {};
    for (const w of warnings) {
      let layer = null;
      if (w.geometry) {
        layer = shape(w.geometry, {
          renderer: marks,
          style: { color: '#d35400', weight: 2, fillOpacity: 0.2, dashArray: w.kind === 'missing' ? '4 4' : null },
          onEachFeature: (f, l) => l.bindPopup(() => el('div', '', warningText(w))),
        });
        if (layer) warningsDrawn++;
      }
      (groups[w.kind] = groups[w.kind] || []).push([w, layer]);
    }
    // Kinds counted but none listed (a capped list) are said too.
    for (const [k, n] of Object.entries(byKind)) if (isNum(n) && n > 0 && !groups[k]) groups[k] = [];
    const kinds = Object.keys(groups).sort((a, b) => (KIND_ORDER.indexOf(a) + 1 || 99) - (KIND_ORDER.indexOf(b) + 1 || 99));
    const counted = (k) => (isNum(byKind[k]) && byKind[k] >= groups[k].length ? byKind[k] : groups[k].length);
    const total = kinds.reduce((n, k) => n + counted(k), 0);
    if (total) {
      li.append(el('div', 'warnings-title', `${plural(total, 'point', 'points')} à vérifier (dalles conservées)`));
      for (const k of kinds) {
        if (only && k === 'missing') continue; // their own section, below
        const ul = el('ul', 'warnings warnings-' + k);
        ul.append(el('li', 'kind', `${KIND[k] || 'autres points'} (${num(counted(k))})`));
        const shown = groups[k].slice(0, LISTED);
        for (const [w, layer] of shown) addItem(ul, warningText(w), layer);
        if (counted(k) > shown.length) ul.append(el('li', 'more', `… et ${num(counted(k) - shown.length)} autres dans le rapport`));
        li.append(ul);
      }
    }
    if (only && groups.missing) await showMissing(s, li, groups.missing, counted('missing'));
    if (shareKey && problemItems.length) await addDownloads(s, problemItems);
  };

  // --- A delivery's page: its missing tiles, each with its expected name,
  // its place in the delivery's CRS and the tiles expected around it (the
  // service derives them: WGS84 is all report.json holds), a click zooms
  // to it.
  const SIDE = { west: "à l'ouest", east: "à l'est", south: 'au sud', north: 'au nord' };
  const showMissing = async (s, li, group, count) => {
    const got = await getJSON(`/storages/${encodeURIComponent(s.id)}/problems?code=missing&limit=${LISTED}`);
    const rows = got && Array.isArray(got.items) ? got.items.filter((r) => r && typeof r === 'object') : [];
    const byName = new Map(rows.map((r) => [r.path, r]));
    const section = el('section', 'missing');
    section.append(el('h2', '', `Dalles manquantes (${num(count)})`),
      el('p', 'hint', 'Trous dans la livraison : des dalles que la grille attend et que le stockage ne contient pas. Livrez-les, sous le nom indiqué.'));
    const ul = el('ul', 'holes');
    const shown = group.slice(0, LISTED);
    shown.forEach(([w, layer], i) => {
      const r = byName.get(missingName(w)) || (!missingName(w) && rows[i]) || null;
      const target = layer || (r ? boxLayer(r.bbox) : null);
      const item = el('li', target ? 'hole zoomable' : 'hole');
      item.append(el('span', 'what', warningText(w)));
      if (target) {
        item.title = 'Cliquez pour y aller';
        item.addEventListener('click', () => zoomTo(target));
      }
      ul.append(item);
      const b = r && Array.isArray(r.box) && r.box.length === 4 && r.box.every(isNum) ? r.box : null;
      if (b) {
        const [unit, d] = r.degrees ? ['°', 7] : [' m', 1];
        item.append(el('div', 'position', `X de ${num(b[0], d)} à ${num(b[2], d)}${unit}, Y de ${num(b[1], d)} à ${num(b[3], d)}${unit} (EPSG:${r.epsg})`));
      }
      const near = r && Array.isArray(r.neighbours) ? r.neighbours.filter((n) => n && SIDE[n.side] && n.name) : [];
      if (near.length) {
        item.append(el('div', 'neighbours', 'dalles voisines attendues : ' +
          near.map((n) => `${SIDE[n.side]} ${n.name}${n.missing ? ' (manquante aussi)' : ''}`).join(', ')));
      }
    });
    if (count > shown.length) ul.append(el('li', 'more', `… et ${num(count - shown.length)} autres dans le rapport CSV`));
    section.append(ul);
    li.append(section);
    body.dataset.holes = String(shown.length);
  };
  // boxLayer stands for a hole drawn nowhere (no geometry in the report):
  // its box, to zoom to.
  const boxLayer = (b) => (Array.isArray(b) && b.length === 4 && b.every(isNum) ? L.rectangle([[b[1], b[0]], [b[3], b[2]]]) : null);

  // With the share key, each problem tile listed gets a download link: a
  // token for that one file, valid an hour.
  const addDownloads = async (s, items) => {
    const paths = [...new Set(items.map(([p]) => p).filter((p) => typeof p === 'string' && p))];
    const got = await getJSON(`/storages/${encodeURIComponent(s.id)}/download-links`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ key: shareKey, paths }),
    });
    const links = got && got.links && typeof got.links === 'object' ? got.links : {};
    let n = 0;
    for (const [p, item] of items) {
      const href = typeof links[p] === 'string' && links[p].startsWith('/storages/') ? links[p] : null;
      if (!href) continue;
      const a = link(href, 'télécharger', 'download');
      a.setAttribute('download', p.split('/').pop());
      a.title = 'Télécharger la dalle telle que le stockage la garde (lien valable une heure)';
      a.addEventListener('click', (e) => e.stopPropagation()); // not a zoom
      item.append(' ', a);
      n++;
    }
    body.dataset.downloadLinks = String(n);
    if (!got) {
      notice.hidden = false;
      notice.textContent = 'Les liens de téléchargement ne sont pas disponibles : rechargez la page, ou demandez un nouveau lien de partage.';
    }
  };
  // One storage's broken outputs leave the others shown.
  await Promise.all(storages.map((s) => showStorage(s).catch((e) => console.warn('stockage', s.id, e))));
  // The panel follows the API's order whatever finished first.
  for (const s of storages) if (s.li) list.append(s.li);
  const summary = document.getElementById('summary');
  if (only) {
    const s = storages[0];
    document.getElementById('title').textContent = s ? s.name : 'Livraison introuvable';
    document.title = `${s ? s.name : 'Livraison introuvable'} — livraison PCRS`;
    summary.textContent = s ? `Stockage ${s.url}` : "Cette livraison n'existe plus : demandez un nouveau lien à l'administrateur du service.";
    if (shareKey) summary.append(el('div', 'when', 'Lien de partage : les dalles à corriger se téléchargent ici.'));
  } else {
    summary.textContent = `${plural(storages.length, 'stockage', 'stockages')}, ${plural(drawn, 'emprise affichée', 'emprises affichées')}`;
  }

  // --- The tiles, by view: from TILE_ZOOM on, each storage's tiles
  // intersecting the view are read from its dalles.fgb with HTTP range
  // requests on the file's spatial index; tiles leaving the view are
  // dropped. An update superseded by a newer move stops.
  const loaded = new Map(); // storage id:feature index → layer
  // Under the footprints, problems and warnings (overlayPane, 400).
  map.createPane('dalles').style.zIndex = 350;
  const tiles = L.geoJSON(null, {
    renderer: L.canvas({ padding: 0.1, pane: 'dalles' }),
    style: { color: '#2e8540', weight: 1, fillOpacity: 0.25 },
    onEachFeature: (f, layer) => {
      loaded.set(f.key, layer);
      layer.bindPopup(() => {
        const p = f.properties || {};
        return el('div', '', `${p.nomImage || p.chemin || 'dalle'} — ${p.typeImage || 'format inconnu'}, ${p.compression || 'sans compression'}, ${isNum(p.resolution) ? p.resolution + ' cm' : 'résolution inconnue'}`);
      });
    },
  }).addTo(map);
  const legacy = new Map(); // storage id → its dalles.geojson features, for outputs older than dalles.fgb
  let seq = 0;
  let done = 0;
  let tileErrors = 0;
  const intersects = (g, r) => {
    const b = L.geoJSON(g).getBounds();
    return b.isValid() && b.getWest() <= r.maxX && b.getEast() >= r.minX && b.getSouth() <= r.maxY && b.getNorth() >= r.minY;
  };
  async function* tilesOf(s, rect) {
    if (!legacy.has(s.id)) {
      let n = 0;
      try {
        for await (const f of flatgeobuf.deserialize(`/storages/${s.id}/dalles.fgb`, { rect })) {
          n++;
          yield f;
        }
        return;
      } catch (e) {
        if (n) throw e; // failed midway: the next move tries again
        // No dalles.fgb (scanned before it existed: 404) or an unreadable
        // one: the whole GeoJSON, once, for small deliveries only; large
        // ones wait for their next scan.
        if (!/\b404\b/.test(String(e && e.message))) {
          tileErrors++;
          console.warn('dalles.fgb illisible, repli sur dalles.geojson :', s.id, e);
        }
        const small = !s.lastCounts || s.lastCounts.tiles <= 20000;
        const fc = small ? await getJSON(`/storages/${s.id}/dalles.geojson`) : null;
        legacy.set(s.id, fc && Array.isArray(fc.features) ? fc.features.map((f, i) => ({ ...f, id: i })) : []);
      }
    }
    for (const f of legacy.get(s.id)) if (f.geometry && intersects(f.geometry, rect)) yield f;
  }
  const publish = (ms, box) => {
    body.dataset.tiles = String(loaded.size);
    body.dataset.tilesBbox = box && box.isValid() ? [box.getWest(), box.getSouth(), box.getEast(), box.getNorth()].join(',') : '';
    body.dataset.tileErrors = String(tileErrors);
    body.dataset.updateMs = ms.toFixed(1);
    body.dataset.view = String(++done);
    document.dispatchEvent(new CustomEvent('pcrs:view'));
  };
  const updateTiles = async () => {
    const mine = ++seq;
    const t0 = performance.now();
    const b = map.getBounds();
    const rect = { minX: b.getWest(), minY: b.getSouth(), maxX: b.getEast(), maxY: b.getNorth() };
    body.dataset.viewBbox = [rect.minX, rect.minY, rect.maxX, rect.maxY].join(',');
    body.dataset.zoom = String(map.getZoom());
    const keep = new Set();
    const fresh = [];
    if (map.getZoom() >= TILE_ZOOM) {
      const inView = storages.filter((s) => s.bounds && s.bounds.intersects(b));
      await Promise.all(inView.map(async (s) => {
        try {
          for await (const f of tilesOf(s, rect)) {
            if (mine !== seq) return;
            const key = s.id + ':' + f.id;
            keep.add(key);
            if (!loaded.has(key)) {
              f.properties = f.properties || {};
              f.key = key;
              fresh.push(f);
            }
          }
        } catch (e) {
          tileErrors++;
          console.warn('dalles de', s.id, e);
        }
      }));
      if (mine !== seq) return; // a newer view took over
    }
    for (const [key, layer] of loaded) {
      if (!keep.has(key)) {
        tiles.removeLayer(layer);
        loaded.delete(key);
      }
    }
    for (const f of fresh) tiles.addData(f); // onEachFeature files it in loaded
    const box = loaded.size ? tiles.getBounds() : null;
    // Measured once drawn: the canvas repaints on the next frame.
    await new Promise((r) => requestAnimationFrame(() => r()));
    if (mine === seq) publish(performance.now() - t0, box);
  };

  const start = viewFromHash();
  if (start) map.setView(start.center, start.zoom);
  else if (drawn) map.fitBounds(outlines.getBounds(), { maxZoom: 16 });
  else map.setView([46.6, 2.4], 6);
  map.on('moveend', () => {
    if (location.hash !== hashOf()) history.replaceState(null, '', hashOf());
    updateTiles();
  });
  window.addEventListener('hashchange', () => {
    const v = viewFromHash();
    if (v) map.setView(v.center, v.zoom);
  });
  history.replaceState(null, '', hashOf());
  await updateTiles();

  body.dataset.footprints = String(drawn);
  body.dataset.problems = String(problemsDrawn);
  body.dataset.warnings = String(warningsDrawn);
  // Time to interactive, from the navigation's start.
  body.dataset.readyMs = performance.now().toFixed(0);
  body.dataset.ready = 'true';
  document.dispatchEvent(new CustomEvent('pcrs:ready'));
})();
