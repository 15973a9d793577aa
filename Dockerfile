# syntax=docker/dockerfile:1
# One image for every role: `imagepipe serve | consume | operator`.
#   docker build -t imagepipe .                               # portable: any x86-64 (or arm64)
#   docker build --build-arg AVX2=1 -t imagepipe:avx2 .       # x86-64-v3 only: SIGILL elsewhere
# Behind a TLS-intercepting proxy, hand the networked steps its CA bundle
# (optional; without it the base image's own bundle is used):
#   docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t imagepipe .
# BASE_IMAGE: any Debian 12 image with Python 3.11 at /usr/local (the tests
# build on one made locally with mmdebstrap, see tests/system/test_image.py).

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# 0: portable. 1: libwebp and pillow-simd built -mavx2 (recorded in the
# image's labels), a few per cent less CPU per photo on CPUs that have it.
ARG AVX2=0
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=secret,id=cacert,target=/etc/ssl/certs/ca-certificates.crt \
    apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config dpkg-dev \
      libjpeg62-turbo-dev zlib1g-dev liblcms2-dev libtiff-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# Layers from the least to the most often changed: pillow-simd (its pins
# live in the script), the pinned dependency wheels, then our source. COPY,
# not RUN --mount=type=bind: every engine keys its cache on what COPY copies,
# while buildah and podman (1.28) reuse a RUN's layer after its mounted
# files changed.
COPY scripts/build-pillow-simd /usr/local/bin/
RUN --mount=type=secret,id=cacert,target=/etc/ssl/certs/ca-certificates.crt \
    IMAGEPIPE_AVX2="$AVX2" build-pillow-simd python /wheels
WORKDIR /build
COPY pyproject.toml constraints.txt ./
RUN --mount=type=secret,id=cacert,target=/etc/ssl/certs/ca-certificates.crt \
    python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
      > /tmp/requirements.txt \
 && echo "pillow-simd==$(build-pillow-simd --version)" > /tmp/pillow-simd.txt \
 && pip wheel -q --wheel-dir /wheels --find-links /wheels -c constraints.txt -c /tmp/pillow-simd.txt \
      -r /tmp/requirements.txt setuptools wheel \
 && pip install -q --no-index --find-links /wheels -c constraints.txt setuptools wheel
# .dockerignore lets in only what the wheel is built from.
COPY . ./
RUN pip wheel -q --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/imagepipe \
 && pip --python /opt/imagepipe/bin/python install -q --no-index --find-links /wheels imagepipe

FROM ${BASE_IMAGE} AS runtime
ARG AVX2=0
LABEL org.opencontainers.image.title="imagepipe" \
      io.imagepipe.avx2="$AVX2"
# No pip, setuptools or wheel at run time: nothing installs into a running pod.
RUN --mount=type=secret,id=cacert,target=/etc/ssl/certs/ca-certificates.crt \
    apt-get update \
 && apt-get install -y --no-install-recommends \
      libjpeg62-turbo zlib1g liblcms2-2 libtiff6 \
      libmagic1 libgs-common \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall -q -y pip setuptools wheel \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent imagepipe
COPY --from=build /opt/imagepipe /opt/imagepipe
RUN --mount=type=bind,from=build,source=/usr/local/bin/build-pillow-simd,target=/mnt/build-pillow-simd \
    sh /mnt/build-pillow-simd --check /opt/imagepipe/bin/python
# Long-running image workers fragment glibc's per-thread heaps: two arenas
# keep RSS flat at no measurable cost for our few threads.
ENV PATH=/opt/imagepipe/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9102
# `docker stop` waits 10 s by default, less than a drain: run the consumer
# with --stop-timeout 35 and the ingest with 85 (README: Container image),
# what the operator sets as the pods' terminationGracePeriodSeconds.
ENTRYPOINT ["imagepipe"]
CMD ["--help"]
