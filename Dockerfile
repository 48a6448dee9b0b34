# node-sentinel's image: one static-ish binary on a base that holds only the C
# runtime it links (glibc, libgcc_s). Needs BuildKit (Docker 23+ uses it by
# default; on 20.10 set DOCKER_BUILDKIT=1): only the stages the final one
# needs are built.
#
# With registries:
#   docker build -t node-sentinel .
# From a binary built beforehand (no Rust image pulled), on any base holding
# the libraries `ldd target/release/node-sentinel` lists:
#   mkdir ctx && cp target/release/node-sentinel ctx/
#   docker build -f Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg BASE_IMAGE=my-base:tag -t node-sentinel ctx
#
# Run on a node the way deploy/kubernetes/base/daemonset.yaml does (root with three
# capabilities; README.md, "Deploying", says why):
#   docker run -d --name node-sentinel --pid=host --net=host --read-only \
#     --user 0 --cap-drop ALL --cap-add DAC_READ_SEARCH --cap-add SYS_PTRACE \
#     --cap-add SYSLOG --security-opt no-new-privileges \
#     -v /proc:/host/proc:ro -v /sys:/host/sys:ro -v /:/host/root:ro,rslave \
#     -v /var/run:/host/var-run:ro,rslave -v /run/dbus:/host/run-dbus:ro \
#     node-sentinel --path.procfs=/host/proc --path.sysfs=/host/sys \
#     --path.rootfs=/host/root \
#     --collector.docker.host=unix:///host/var-run/docker.sock \
#     --collector.systemd.bus=unix:path=/host/run-dbus/system_bus_socket
ARG BUILD_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# build: compile here; prebuilt: the build context's ./node-sentinel.
ARG BINARY=build

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
RUN cargo build --release --locked \
    && strip target/release/node-sentinel \
    && cp target/release/node-sentinel /node-sentinel

FROM scratch AS prebuilt
COPY node-sentinel /node-sentinel

FROM ${BINARY} AS binary

FROM ${BASE_IMAGE}
COPY --from=binary /node-sentinel /usr/bin/node-sentinel
# Unprivileged by default (the HTTP side and most collectors work so); the
# DaemonSet and the docker run line above run it as root with three
# capabilities, since a non-root container gets none of them.
USER 65534:65534
EXPOSE 9899
ENTRYPOINT ["/usr/bin/node-sentinel"]
