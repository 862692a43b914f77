# bounceproc image: slim, non-root. Build: docker build -t bounceproc .
# Run: docker run --rm bounceproc --version; compose.yaml runs it with PostgreSQL and Redis.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bounceproc ./bounceproc
COPY workers ./workers
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --home-dir /var/lib/bounceproc --create-home --shell /usr/sbin/nologin bounceproc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# In a container the API and the sink listen on every interface; the sink accepts nothing until
# BOUNCEPROC_SINK_ACCEPT is set. Data (SQLite file, journal, secret) in /var/lib/bounceproc.
ENV BOUNCEPROC_DATA_DIR=/var/lib/bounceproc \
    BOUNCEPROC_API_LISTEN=0.0.0.0:8025 \
    BOUNCEPROC_SINK_LISTEN=0.0.0.0:2525 \
    PYTHONUNBUFFERED=1
USER bounceproc
WORKDIR /var/lib/bounceproc
VOLUME ["/var/lib/bounceproc"]
EXPOSE 8025 2525
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8025/healthz', timeout=4)"]
ENTRYPOINT ["bounceproc"]
CMD ["serve"]
