# syntax=docker/dockerfile:1
#
# workerca and workerca-agent as static binaries on a small image.
# docs/deploy.md explains the choices; docker-compose.yml uses it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/workerca ./cmd/workerca-agent

# Alpine rather than distroless: the compose bootstrap (workerca-init, the
# example agent) runs short sh scripts, and the health check runs wget;
# busybox gives both in a few megabytes.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates \
    && adduser -D -H -u 10001 workerca \
    && mkdir -p /data /shared /agent \
    && chown workerca:workerca /data /shared /agent \
    && chmod 0700 /data /agent
COPY --from=build /out/workerca /out/workerca-agent /usr/local/bin/
USER workerca
EXPOSE 8443 8080
ENTRYPOINT ["workerca"]
CMD ["--help"]
