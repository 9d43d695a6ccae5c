# syntax=docker/dockerfile:1
# jamgen for a host with one NVIDIA GPU: `docker compose up -d --build` (README: "Run it with Docker").
# The install step is scripts/install.sh, the very script `make run`, `make test` and CI run: one recipe.
# torch 2.11.0's CUDA 13 wheels bring their own CUDA libraries; the host needs the NVIDIA driver (580 or
# newer) and the NVIDIA Container Toolkit. Without a GPU the same image runs on the CPU (slowly).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    JAMGEN_DATA_DIR=/data \
    JAMGEN_DB_PATH=/data/jamgen.db \
    JAMGEN_MODEL_DIR=/models/local \
    HF_HOME=/models/huggingface \
    TORCH_HOME=/models/torch \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

WORKDIR /app
COPY . .

# As root: Debian's ffmpeg (with libmp3lame) and libopus0 (voice), then .venv with the pinned packages and jamgen.
# The cache mount keeps downloaded wheels between builds, so a code change does not fetch torch again.
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_ROOT_USER_ACTION=ignore bash scripts/install.sh \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --user-group jamgen \
    && mkdir -p /data /models/local /models/huggingface /models/torch \
    && chown -R jamgen:jamgen /data /models

# The jamgen user, by number so that runtimes can check it is not root.
USER 1000:1000

# /data: the database, job inputs and finished tracks. /models: weights (HF_HOME cache, local folders, torch hub).
VOLUME ["/data", "/models"]

# Healthy = the database opens and the bot's heartbeat says its engine worker is alive (no torch, < 1 s).
# The start period covers the first start, which may download the default model.
HEALTHCHECK --interval=60s --timeout=30s --start-period=10m --retries=3 \
    CMD ["jamgen", "doctor", "--quick"]

ENTRYPOINT ["jamgen"]
CMD ["run"]
