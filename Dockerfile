# model-sidecar image: `docker build -t model-sidecar .`
# Two stages: the first builds a virtualenv from wheels, the second only copies it (no
# compilers, no pip cache, no source tree). Runs as a non-root user on a read-only root FS.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/model-sidecar
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
# The `aws` extra (botocore) lets a `bedrock` upstream sign its requests with the pod's identity.
RUN /opt/model-sidecar/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/model-sidecar/bin/pip install --only-binary=:all: "$(ls /wheels/*.whl)[aws]" \
    && /opt/model-sidecar/bin/pip uninstall -y pip setuptools

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/model-sidecar /opt/model-sidecar
ENV PATH=/opt/model-sidecar/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# 8788: the proxy (127.0.0.1 only: the app shares the pod's network namespace).
# 9788: the admin listener (/metrics /healthz /readyz /status, the comparison page at /; its
# page.html/.css/.js ship in the wheel as package data), bound to 0.0.0.0 below.
EXPOSE 8788 9788
ENTRYPOINT ["model-sidecar"]
CMD ["serve", "--admin-listen", "0.0.0.0:9788"]
