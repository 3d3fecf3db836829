# syntax=docker/dockerfile:1
# S4 gateway, CPU image. GPU image: Dockerfile.gpu (different base image, see there).
#
#   docker build -t s4 .
#   docker run -p 8014:8014 -v s4-data:/data s4                    # embedded store in /data
#   docker run -p 8014:8014 --env-file .env s4 --backend s3 --upstream-endpoint http://host:8333
#
# Extra arguments go after `s4 serve --host 0.0.0.0 --data-dir /data`; S4_* variables work too.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: the package and its dependencies in a self-contained venv -------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Metadata first so the dependency layer is reused while only s4/ changes.
COPY pyproject.toml README.md ./
COPY s4 ./s4
RUN pip install --no-cache-dir . \
    && python -m compileall -q /opt/venv

# ---- runtime: the venv, a non-root user, nothing else ------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="s4" \
      org.opencontainers.image.description="S3-compatible gateway that stores every object compressed" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 s4 \
    && useradd --system --uid 10001 --gid s4 --home-dir /home/s4 --create-home \
       --shell /usr/sbin/nologin s4 \
    && mkdir -p /data \
    && chown s4:s4 /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /home/s4
USER 10001:10001

# The embedded store (and the generated credentials.json when none are configured).
VOLUME ["/data"]
EXPOSE 8014

# /health only says the process serves HTTP; readiness (/ready) is for orchestrators.
# No curl in slim images: Python's urllib fails on anything but a 2xx answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8014/health', timeout=4)"]

ENTRYPOINT ["s4", "serve", "--host", "0.0.0.0", "--data-dir", "/data"]
CMD []
