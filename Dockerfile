# Build: docker build -t node-sentinel .
# Run on a node (see deploy/kubernetes/daemonset.yaml for the Kubernetes way):
#   docker run -d --pid=host --net=host \
#     -v /proc:/host/proc:ro -v /sys:/host/sys:ro -v /:/host/root:ro,rslave \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro \
#     -v /run/dbus/system_bus_socket:/run/dbus/system_bus_socket:ro \
#     node-sentinel --path.procfs=/host/proc --path.sysfs=/host/sys --path.rootfs=/host/root
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/node-sentinel

FROM gcr.io/distroless/cc-debian12
COPY --from=build /src/target/release/node-sentinel /usr/bin/node-sentinel
EXPOSE 9899
ENTRYPOINT ["/usr/bin/node-sentinel"]
