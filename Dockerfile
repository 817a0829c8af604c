# syntax=docker/dockerfile:1
# Multi-stage build of the static helmops binary into a distroless, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/helmops/helmops/internal/version.Version=${VERSION} -X github.com/helmops/helmops/internal/version.Commit=${COMMIT}" \
      -o /out/helmops ./cmd/helmops

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/helmops /usr/local/bin/helmops
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/helmops"]
