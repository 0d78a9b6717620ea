# switchboard's container image: one static binary, the CA bundle, a default
# config and an empty queue directory, run as a non-root user. Nothing else:
# no shell, no package manager.
#
#   docker build -t switchboard .          (or: podman build -t switchboard .)
#   docker run --rm -p 8080:8080 -v switchboard-queue:/var/lib/switchboard switchboard
#
# deploy/image.sh builds it and checks that the container answers /readyz.
#
# The default config (deploy/container/switchboard.yaml) takes a generic JSON
# webhook at :8080/hooks/events and logs each event; mount your own at
# /etc/switchboard/switchboard.yaml. The queue lives in /var/lib/switchboard:
# give it a volume, or accepted events are lost with the container.

ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
# BINARY=prebuilt takes the binary and the CA bundle from prebuilt/ in the
# build context instead of compiling them here: deploy/image.sh uses it where
# no Go image can be pulled.
ARG BINARY=build

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A clone's .git gives the binary its commit (`switchboard version`); a
# context without a usable one (a tarball, a git worktree) builds without it.
RUN mkdir -p /out/state \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ \
 && (CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags='-s -w' -o /out/switchboard ./cmd/switchboard \
     || CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/switchboard ./cmd/switchboard)

FROM scratch AS prebuilt
COPY prebuilt/ /out/

FROM ${BINARY} AS binary

FROM scratch
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/switchboard /usr/local/bin/switchboard
COPY deploy/container/switchboard.yaml /etc/switchboard/switchboard.yaml
COPY --from=binary --chown=65532:65532 /out/state /var/lib/switchboard
# A numeric user needs no /etc/passwd; 65532 is the "nonroot" of distroless
# images, so volumes prepared for those fit.
USER 65532:65532
# So that `docker exec CONTAINER switchboard dlq list` finds the binary.
ENV PATH=/usr/local/bin
VOLUME /var/lib/switchboard
# 8080: webhooks (server.listen). 9090: admin (/healthz, /readyz, /metrics),
# on loopback in the default config: see the README's Kubernetes section.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run", "-c", "/etc/switchboard/switchboard.yaml"]
