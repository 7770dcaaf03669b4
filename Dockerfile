# Build with the GDAL headers, run with the GDAL runtime only.
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgdal-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/pcrs-indexer ./cmd/pcrs-indexer

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgdal32 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/pcrs-indexer --create-home pcrs
COPY --from=build /out/pcrs-indexer /usr/local/bin/pcrs-indexer
USER pcrs
WORKDIR /var/lib/pcrs-indexer
ENTRYPOINT ["pcrs-indexer"]
CMD ["--help"]
