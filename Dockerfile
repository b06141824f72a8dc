# pgrouter image: the SQL parser is cgo (pg_query_go), so build with gcc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/pgrouter ./cmd/pgrouter

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 pgrouter
COPY --from=build /out/pgrouter /usr/local/bin/pgrouter
USER pgrouter
EXPOSE 6432 9930
ENTRYPOINT ["pgrouter"]
CMD ["serve", "--config", "/etc/pgrouter/pgrouter.yaml"]
