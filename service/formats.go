package service

import "github.com/openpcrs/pcrs-indexer/vector"

// scanFormats are the encodings a service scan publishes besides GeoJSON:
// FlatGeobuf, whose spatial index lets the map fetch only the tiles of its
// view (HTTP ranges on dalles.fgb) instead of the whole dalles.geojson.
var scanFormats = []vector.Format{vector.FlatGeobuf}
