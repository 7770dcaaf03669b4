module github.com/openpcrs/pcrs-indexer

go 1.26

require (
	github.com/airbusgeo/godal v0.0.18 // indirect
	github.com/paulmach/orb v0.11.1 // indirect
	github.com/prometheus/client_golang v1.20.5 // indirect
	golang.org/x/sync v0.12.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
	golang.org/x/term v0.27.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
