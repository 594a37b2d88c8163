# Cadenza: runs the Discord bot by default; `docker run IMAGE python -m composer compose 500` composes.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm libopus0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY composer ./composer
COPY training ./training
COPY bot ./bot
COPY models ./models
RUN pip install --no-cache-dir . \
    && useradd --create-home cadenza \
    && mkdir -p /data /app/out && chown cadenza /data /app/out

ENV COMPOSER_MODEL=/app/models/default.cadenza \
    COMPOSER_SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2 \
    BOT_DATA_DIR=/data \
    TF_CPP_MIN_LOG_LEVEL=3 \
    PYTHONUNBUFFERED=1
USER cadenza
VOLUME /data
CMD ["python", "-m", "bot"]
