# syntax=docker/dockerfile:1
# Multi-stage: `floors` holds the two lower floors (imaging, engine) and the shipped bundle;
# `builder` adds the web package and installs the serve extra into a venv; `runtime` (the default,
# last stage) holds only that venv, shipped model included, run by a non-root user; `train` adds
# the training package instead of the web package, for the compose file's train profile.

FROM python:3.11-slim-bookworm AS floors
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY imaging ./imaging
COPY engine ./engine
COPY models/default ./models/default

FROM floors AS builder
COPY app ./app
# Install the serve extra (the shipped bundle lands in /opt/venv/share/cxr-pneumonia), then drop
# what serving never reads: caches, bundled tests, pip itself. No TensorFlow: heatmaps come from
# the bundle's ONNX Grad-CAM graph. The model files become read-only.
RUN /opt/venv/bin/pip install -c constraints.txt ".[serve]" \
 && find /opt/venv -name '__pycache__' -type d -prune -exec rm -rf {} + \
 && find /opt/venv -name 'tests' -path '*site-packages/*' -type d -prune -exec rm -rf {} + \
 && rm -rf /opt/venv/lib/python3.11/site-packages/pip /opt/venv/lib/python3.11/site-packages/setuptools \
 && chmod 0444 /opt/venv/share/cxr-pneumonia/models/default/* \
 && chmod 0555 /opt/venv/share/cxr-pneumonia/models/default

FROM floors AS train
ENV PYTHONUNBUFFERED=1
COPY training ./training
RUN /opt/venv/bin/pip install -c constraints.txt ".[train]"
# A batch job that writes into bind-mounted folders: it runs as whoever `--user` says (root if
# unset), so the files it writes can belong to you (`docker compose run --user "$(id -u)" ...`).
WORKDIR /work
ENV PATH=/opt/venv/bin:$PATH MPLCONFIGDIR=/tmp/matplotlib
ENTRYPOINT ["python3", "-m", "training"]
CMD ["--help"]

# docker compose --profile monitoring: Debian's Prometheus with the service's scrape config.
FROM python:3.11-slim-bookworm AS prometheus
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
COPY deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml /etc/prometheus/
USER nobody
EXPOSE 9090
ENTRYPOINT ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]

# docker compose --profile pacs: Debian's Orthanc as a demo PACS that routes CR/DX films to the
# DICOM node and stores the node's results (web UI on :8042, DICOM on :4242).
FROM python:3.11-slim-bookworm AS orthanc
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends orthanc >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/orthanc/db && chown -R orthanc:orthanc /var/lib/orthanc
COPY deploy/orthanc/orthanc.json deploy/orthanc/route-to-node.lua /etc/orthanc-cxr/
USER orthanc
EXPOSE 4242 8042
ENTRYPOINT ["Orthanc", "/etc/orthanc-cxr/orthanc.json"]

# docker compose up: Debian's PostgreSQL as the record of answers and verdicts (DATABASE_URL).
FROM python:3.11-slim-bookworm AS postgres
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data && chown -R postgres:postgres /var/lib/postgresql
COPY deploy/postgres/entrypoint.sh /usr/local/bin/cxr-postgres
USER postgres
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/cxr-postgres"]

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000
# The venv holds the shipped model (MODEL_DIR unset serves it); it belongs to root and is
# read-only, so the service user can read it, not change it.
COPY --from=builder /opt/venv /opt/venv
# /spool: the DICOM node's films and unsent results; /records: the record of answers (a SQLite
# file unless DATABASE_URL names PostgreSQL, as compose does) and records waiting for the
# database. Volumes, so they outlive the container.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin cxr \
 && mkdir -p /spool /records && chown 10001 /spool /records
USER 10001
WORKDIR /app
ENV DICOM_HOST=0.0.0.0 DICOM_SPOOL_DIR=/spool \
    DATABASE_URL=sqlite:////records/answers.sqlite3 RECORDS_SPOOL_DIR=/records/spool
# 8000: HTTP (python -m app serve); 11112: DICOM and 9112: its metrics (python -m app dicom-node).
EXPOSE 8000 11112 9112
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=4).status == 200 else 1)"]
# python -m app serve: uvicorn with keep-alive 75 s, 20 s of graceful shutdown, WORKERS worker
# processes on a TCP socket that keeps TCP_NODELAY (app/serve.py says why), and with several
# workers a multiprocess folder for /metrics under /tmp.
ENV WORKERS=1
CMD ["python3", "-m", "app", "serve"]
