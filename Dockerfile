# turnstiled: a small multi-stage image that runs the daemon as a non-root user.
#
#   docker build -t turnstiled .            # or: podman build --format docker -t turnstiled .
#   docker run -d --name turnstiled -p 9464:9464 \
#     -v $PWD/turnstiled.yaml:/etc/turnstiled/turnstiled.yaml:ro \
#     -v turnstiled-state:/var/lib/turnstiled \
#     -e KAFKA_BOOTSTRAP=broker:9092 -e PG_DSN='host=db dbname=mta user=turnstiled password=...' \
#     turnstiled
#
# docs/DEPLOY.md ("The container") explains the volumes, the environment and the healthcheck;
# scripts/container-test.sh builds this image and runs the demo and the daemon in it.
# Every package comes from Debian bookworm's archive, as for the .deb (scripts/install-deps.sh).

# ---- stage 1: build the release binary --------------------------------------------------------
FROM docker.io/library/debian:bookworm AS build

ARG DEBIAN_FRONTEND=noninteractive
# The toolchain and the -dev packages of scripts/install-deps.sh that the turnstiled target
# needs (doctest-dev too: CMake looks for it at configure time). Not the test tools, PostgreSQL
# or Google Benchmark.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      librdkafka-dev libconcurrentqueue-dev libsimdjson-dev libfast-float-dev libzstd-dev \
      prometheus-cpp-dev libyaml-cpp-dev libabsl-dev libcli11-dev libfmt-dev libpq-dev \
      libsystemd-dev libcivetweb-dev doctest-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads, so that editing docs or deploy files keeps this layer cached.
# tests/ is needed because CMakeLists.txt always adds it (its doctest main and pytest list).
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY src/ src/
COPY tests/ tests/
# The release preset, without the benchmarks, building only the daemon. Warnings stay warnings
# here (CI treats them as errors). There is no .git in the context, so the build info reports
# commit "unknown".
RUN cmake --preset release -DTURNSTILED_BENCH=OFF -DTURNSTILED_WERROR=OFF \
 && cmake --build build/release --target turnstiled -j"$(nproc)" \
 && strip --strip-unneeded build/release/turnstiled \
 && build/release/turnstiled version

# ---- stage 2: the runtime ---------------------------------------------------------------------
FROM docker.io/library/debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
# The shared libraries the binary links (what `ldd` / `dpkg-shlibdeps` list; libc6, libstdc++6,
# libgcc-s1 and libsystemd0 are in the base already), the time zone database (format.timezone:
# America/New_York) and CA certificates (Kafka or PostgreSQL over TLS). No curl: the
# healthcheck uses bash.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
      librdkafka1 libpq5 libzstd1 libyaml-cpp0.7 libprometheus-cpp-core1.0 libcivetweb1 \
      libsimdjson14 libabsl20220623 libsystemd0 \
      tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 turnstiled \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home \
      --home-dir /var/lib/turnstiled --shell /usr/sbin/nologin turnstiled \
 && install -d -o turnstiled -g turnstiled -m 0750 /var/lib/turnstiled \
 && install -d -m 0755 /etc/turnstiled

COPY --from=build /src/build/release/turnstiled /usr/bin/turnstiled
# The production config; mount yours over it (or over /etc/turnstiled).
COPY config/turnstiled.yaml /etc/turnstiled/turnstiled.yaml
# Fails the build if a library is missing from the list above.
RUN ! ldd /usr/bin/turnstiled | grep 'not found' \
 && /usr/bin/turnstiled version

# The state folder is the working folder, as under the systemd unit: the shipped config's
# relative out/lake and out/dead-letter land in it. Mount a volume there to keep them.
ENV TURNSTILED_STATE_DIR=/var/lib/turnstiled \
    TURNSTILED_METRICS_LISTEN=0.0.0.0:9464
WORKDIR /var/lib/turnstiled
USER turnstiled:turnstiled
EXPOSE 9464

# /healthz answers 200 while the process is alive (/readyz once partitions are assigned). bash's
# /dev/tcp asks it at the address of TURNSTILED_METRICS_LISTEN (0.0.0.0 and :: mean loopback);
# a config whose metrics.listen ignores that variable needs --health-cmd of its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/bin/bash", "-c", "a=${TURNSTILED_METRICS_LISTEN:-127.0.0.1:9464}; h=${a%:*}; h=${h#\\[}; h=${h%\\]}; case $h in ''|0.0.0.0|::|'*') h=127.0.0.1;; esac; exec 3<>\"/dev/tcp/$h/${a##*:}\" || exit 1; printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3; IFS= read -r -t 4 s <&3 || exit 1; [[ $s == 'HTTP/1.'?' 200'* ]]"]

# SIGTERM (docker stop) flushes, checkpoints, commits and exits 0 within
# pipeline.shutdown_timeout (30 s by default): stop with a longer timeout, e.g. -t 90.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/turnstiled"]
CMD ["run", "-c", "/etc/turnstiled/turnstiled.yaml"]
