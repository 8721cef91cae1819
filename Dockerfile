# maskweb image: web server and inference workers (one image, the command picks the part).
#   docker build -t maskweb .                                   CPU (TensorFlow backend)
#   docker build -t maskweb-gpu --build-arg JAX='jax[cuda12]==0.10.2' .   GPU workers (KERAS_BACKEND=jax)

# --- frontend: copy the browser's third-party modules (socket.io client) into frontend/vendor -------------
FROM node:22-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
COPY frontend/scripts ./scripts
RUN npm ci --no-audit --no-fund

# --- the Python application -------------------------------------------------------------------------------
FROM python:3.11-slim
ARG JAX="jax==0.10.2"
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
    && pip install . "$JAX" \
    && pip uninstall -y maskweb && rm -rf backend
COPY backend ./backend
COPY frontend/pages ./frontend/pages
COPY frontend/src ./frontend/src
COPY --from=frontend /src/frontend/vendor ./frontend/vendor
RUN pip install --no-deps .
USER maskweb
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"MASKWEB_PORT\"]}/healthz', timeout=4)" || exit 1
CMD ["maskweb", "web"]
