# SignUp_Sync service image: migrations, then uvicorn (uvloop + httptools) on $PORT.
# Dependencies come at the exact versions of constraints.txt, so an image built later gets
# the versions tested today (README, "Dependencies", says how to refresh the file).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8001

WORKDIR /opt/signup-sync
COPY constraints.txt pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --constraint constraints.txt . \
    && groupadd --gid 10001 app \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown 10001:10001 /data

# The embedded SQLite default (no ENGARDE_DATABASE_URL) writes to the working directory.
WORKDIR /data
# Numeric, so a platform that refuses root images (runAsNonRoot) can check it.
USER 10001:10001
EXPOSE 8001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8001'), timeout=4)"]

# A shell so that $PORT (set by the platform) is expanded at start; exec hands it the signals.
CMD ["sh", "-c", "signup-sync db upgrade && exec signup-sync serve --host 0.0.0.0 --port \"${PORT:-8001}\" --workers \"${WEB_CONCURRENCY:-2}\""]
