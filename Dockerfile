# driftline: the engine image (`driftline serve`), also used by the compose stack's producer.
#   docker build -t driftline .
#   docker run --rm -v $PWD/driftline.toml:/etc/driftline/driftline.toml driftline
FROM python:3.11-slim

# Numba caches compiled kernels next to the module; site-packages is read-only for the
# driftline user, so the cache goes to a directory it owns.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/home/driftline/.cache/numba

# The user first, with the directories the compose volumes mount: a named volume takes the
# ownership of the directory it is mounted on, so the state and data volumes are writable.
RUN groupadd --system driftline \
    && useradd --system --gid driftline --create-home --home-dir /home/driftline \
       --shell /usr/sbin/nologin driftline \
    && mkdir -p /etc/driftline /var/lib/driftline /data \
    && chown driftline:driftline /var/lib/driftline /data

WORKDIR /app
# Only what the wheel is built from (the package dirs of pyproject.toml, and its readme).
COPY pyproject.toml README.md ./
COPY engine/ engine/
COPY detectors/ detectors/
COPY connectors/ connectors/
RUN pip install . && driftline --version

USER driftline
EXPOSE 8080
ENTRYPOINT ["driftline"]
CMD ["serve", "--config", "/etc/driftline/driftline.toml"]
