# maskweb images, one Dockerfile, two targets (docker-compose.yml builds both):
#   docker build --target app -t maskweb .       web server and CPU workers (TensorFlow backend)
#   docker build --target gpu -t maskweb-gpu .   GPU workers (KERAS_BACKEND=jax, CUDA 12 wheels)
# The command picks the part: `maskweb web`, `maskweb worker`.

# --- frontend: copy the browser's third-party modules (socket.io client) into frontend/vendor -------------
FROM node:22-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
COPY frontend/scripts ./scripts
RUN npm ci --no-audit --no-fund

# --- app: the Python application on CPU (web and CPU workers) ---------------------------------------------
FROM python:3.11-slim AS app
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MASKWEB_DATA_DIR=/data \
    MASKWEB_HOST=0.0.0.0 \
    MASKWEB_PORT=8000 \
    MASKWEB_WEIGHTS=/weights/mask_rcnn_coco.h5 \
    MASKWEB_FRONTEND_DIR=/app/frontend
RUN useradd --create-home --uid 1000 maskweb && mkdir -p /data /weights && chown maskweb /data
WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir backend && touch backend/__init__.py \
    && pip install ".[jax]" \
    && pip uninstall -y maskweb && rm -rf backend
COPY backend ./backend
COPY frontend/pages ./frontend/pages
COPY frontend/src ./frontend/src
COPY --from=frontend /src/frontend/vendor ./frontend/vendor
RUN pip install --no-deps .
USER maskweb
EXPOSE 8000
VOLUME ["/data"]
# The web's check; docker-compose.yml gives workers their own (a live heartbeat in Redis).
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"MASKWEB_PORT\"]}/healthz', timeout=4)" || exit 1
CMD ["maskweb", "web"]

# --- gpu: the same application with JAX's CUDA 12 wheels, for GPU workers ---------------------------------
FROM app AS gpu
USER root
RUN pip install "jax[cuda12]==0.10.2"
USER maskweb
ENV KERAS_BACKEND=jax
CMD ["maskweb", "worker", "--concurrency", "1"]
