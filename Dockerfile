# syntax=docker/dockerfile:1
# The one image of Stability Sweeps, in two variants chosen by a build argument:
#   docker build -t stability-sweeps:0.1.0-cpu .                          (API, CPU workers, dashboard)
#   docker build --build-arg VARIANT=gpu -t stability-sweeps:0.1.0-gpu .  (GPU workers: tensorflow[and-cuda])
# Tags: <version from pyproject.toml>-<variant>, and <variant> alone for the newest
# build; deploy/kubernetes/ and docs/kubernetes.md use that scheme.
# Build stage: a virtual environment with the package and its extras; the
# runtime stage copies only that environment, so no compiler or pip cache ships.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
COPY stability_sweeps ./stability_sweeps
RUN case "$VARIANT" in \
      cpu) EXTRAS=dashboard ;; \
      gpu) EXTRAS=dashboard,gpu ;; \
      *) echo "VARIANT must be cpu or gpu, not $VARIANT" >&2; exit 2 ;; \
    esac \
 && pip install --no-cache-dir ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE} AS runtime
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="stability-sweeps" org.opencontainers.image.description="Stability Sweeps (${VARIANT})"
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it; HOME and /tmp
# are the only places written (Keras caches datasets under $HOME/.keras), and
# the Kubernetes manifests mount emptyDir volumes there over a read-only root.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/sweeps --shell /usr/sbin/nologin sweeps
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH HOME=/home/sweeps \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
COPY examples ./examples
USER 10001:10001
EXPOSE 8000
CMD ["sweeps", "serve", "--host", "0.0.0.0", "--workers", "0"]
