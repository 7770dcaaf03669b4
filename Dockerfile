# Build with the GDAL headers (and npm, for the map's Leaflet), run with the
# GDAL runtime only.
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgdal-dev pkg-config nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY service/web/package.json service/web/package-lock.json service/web/
RUN cd service/web && npm ci --no-audit --no-fund
COPY . .
RUN cp service/web/node_modules/leaflet/dist/leaflet.js service/web/node_modules/leaflet/dist/leaflet.css service/web/dist/ \
 && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/pcrs-indexer ./cmd/pcrs-indexer

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgdal32 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/pcrs-indexer --create-home pcrs
COPY --from=build /out/pcrs-indexer /usr/local/bin/pcrs-indexer
USER pcrs
WORKDIR /var/lib/pcrs-indexer
EXPOSE 8080
ENTRYPOINT ["pcrs-indexer"]
CMD ["--help"]
