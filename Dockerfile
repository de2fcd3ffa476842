# Build: docker build -t zendesk-ivr .
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config libopus-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 espeak-ng ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/zendesk-ivr /usr/local/bin/zendesk-ivr
COPY audio /opt/zendesk-ivr/audio
COPY config /opt/zendesk-ivr/config
WORKDIR /opt/zendesk-ivr
EXPOSE 5060/udp 5060/tcp 9090/tcp
ENTRYPOINT ["zendesk-ivr"]
CMD ["run", "--config", "/opt/zendesk-ivr/config/zendesk-ivr.example.toml"]
