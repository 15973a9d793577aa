# One image for every role: `imagepipe serve | consume | operator`.
#   docker build -t imagepipe .                    # AVX2 build (x86-64-v3 CPUs)
#   docker build --build-arg AVX2=0 -t imagepipe . # portable build

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG AVX2=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
      libjpeg62-turbo-dev zlib1g-dev liblcms2-dev libtiff-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# pillow-simd from source against libjpeg-turbo, lcms2, zlib and a libwebp
# built -O3 and linked in statically: the script bootstrap uses. A -mavx2
# build dies on CPUs without AVX2, hence the build argument.
COPY scripts/build-pillow-simd ./scripts/
RUN IMAGEPIPE_AVX2="$AVX2" scripts/build-pillow-simd python /wheels
COPY pyproject.toml README.md ./
COPY src ./src
COPY service ./service
COPY consumer ./consumer
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels --find-links /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libjpeg62-turbo zlib1g liblcms2-2 libtiff6 \
      libmagic1 libgs-common \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent imagepipe
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels imagepipe \
 && python -c "import importlib.metadata as m; m.distribution('pillow-simd')" \
 && ! python -c "import importlib.metadata as m; m.distribution('pillow')" 2>/dev/null
# Long-running image workers fragment glibc's per-thread heaps: two arenas
# keep RSS flat at no measurable cost for our few threads.
ENV MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9102
ENTRYPOINT ["imagepipe"]
CMD ["--help"]
