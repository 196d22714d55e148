# medgr2 container: build the Go binary, then run it on a CUDA runtime base
# with the ONNX Runtime GPU libraries. The CPU path works in the same image
# (`--device auto` falls back to CPU when no GPU is visible).
#
#   docker build -t medgr2 .
#   docker run --gpus all -p 8080:8080 medgr2 serve --addr :8080

# ---- build stage ----
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/medgr2 ./cmd/medgr2

# ---- ONNX Runtime GPU libraries ----
FROM debian:bookworm-slim AS ort
ARG ORT_VERSION=1.30.0
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -o /tmp/ort.tgz \
      "https://github.com/microsoft/onnxruntime/releases/download/v${ORT_VERSION}/onnxruntime-linux-x64-gpu-${ORT_VERSION}.tgz" \
    && mkdir -p /opt/onnxruntime \
    && tar -xzf /tmp/ort.tgz -C /opt/onnxruntime --strip-components=1 \
    && rm /tmp/ort.tgz

# ---- runtime stage ----
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 medgr2
COPY --from=ort /opt/onnxruntime/lib/ /opt/onnxruntime/lib/
COPY --from=build /out/medgr2 /usr/local/bin/medgr2
COPY models/default/ /opt/medgr2/models/
ENV MEDGR2_ORT_LIB=/opt/onnxruntime/lib/libonnxruntime.so.1 \
    LD_LIBRARY_PATH=/opt/onnxruntime/lib \
    MEDGR2_MODELS=/opt/medgr2/models
USER medgr2
WORKDIR /home/medgr2
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["medgr2"]
CMD ["serve", "--addr", ":8080", "--device", "auto"]
