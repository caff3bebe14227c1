# quantserve production image: NVIDIA's Triton server (NGC) with quantserve installed.
#
#   docker build -t quantserve:serve .                         # serving image, no torch
#   docker build --target optimizer -t quantserve:optimizer .  # + torch (CPU wheel) and TensorRT's Python API
#   docker run --gpus all -p 8000-8002:8000-8002 -v $PWD/model_repo:/models quantserve:serve
#
# 24.10 carries Triton 2.51, the release whose wheel (nvidia-pytriton) the project is tested
# against without Docker. Nothing here was built on the project's CI machines (no Docker engine
# there); see docs/production.md for what was and was not run.
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3

FROM ${TRITON_IMAGE} AS serve
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/quantserve/venv \
    PATH=/opt/quantserve/venv/bin:/opt/tritonserver/bin:${PATH}

# quantserve needs Python 3.11+. The image's system Python may be older (3.10 on Ubuntu 22.04):
# then install python3.11 from the distribution; either way quantserve gets its own venv.
# hadolint ignore=DL3008
RUN if python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then PY=python3; \
    else apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
         && rm -rf /var/lib/apt/lists/* && PY=python3.11; fi \
    && "$PY" -m venv "$VIRTUAL_ENV"

WORKDIR /opt/quantserve/src
# Dependencies first (cached layer): the pinned lock minus torch and other build-time-only packages.
COPY requirements-serving.txt ./
RUN pip install -r requirements-serving.txt
COPY pyproject.toml ./
COPY quantserve ./quantserve
COPY optimizer ./optimizer
COPY serving ./serving
COPY loadtest ./loadtest
COPY examples ./examples
RUN pip install --no-deps . \
    && quantserve --help > /dev/null

# Non-root user (uid 10001: the base image already has a uid-1000 user); the model repository
# is a volume it can write to (deploys) and read (serve).
RUN useradd --create-home --uid 10001 --user-group --shell /bin/bash quantserve \
    && mkdir -p /models \
    && chown 10001:10001 /models
USER 10001:10001
WORKDIR /home/quantserve
VOLUME ["/models"]
# 8000 HTTP (health, metrics-free REST), 8001 gRPC, 8002 Prometheus metrics.
EXPOSE 8000 8001 8002
# Triton's readiness endpoint, asked with the venv's Python (no curl needed in the image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/v2/health/ready', timeout=4)"]
# Inside the container binding 0.0.0.0 is right: the port mapping decides who can reach it.
ENTRYPOINT ["quantserve", "serve", "--repo", "/models", "--host", "0.0.0.0"]

# Optimizer image: the serving image plus torch (CPU wheel; export only), the ONNX tools and
# TensorRT's Python API pinned to the TensorRT release inside the base image, so engines built
# here load in the same image's Triton (quantserve refuses a version mismatch at deploy).
FROM serve AS optimizer
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TENSORRT_VERSION=10.5.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
USER 0:0
COPY requirements.lock /opt/quantserve/src/
RUN pip install --index-url "${TORCH_INDEX}" "torch==$(grep -i '^torch==' /opt/quantserve/src/requirements.lock | cut -d= -f3)" \
    && pip install -r /opt/quantserve/src/requirements.lock \
    && pip install "tensorrt-cu12==${TENSORRT_VERSION}"
USER 10001:10001
ENTRYPOINT ["quantserve"]
CMD ["--help"]
