# One image for every role: api, worker, relay, projector (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY projections ./projections
COPY interfaces ./interfaces
COPY infrastructure ./infrastructure
RUN pip install --no-cache-dir . && useradd --system --uid 10001 apranova \
    && mkdir -p /var/lib/apranova && chown apranova /var/lib/apranova
ENV APRANOVA_DATA_DIR=/var/lib/apranova
USER apranova
EXPOSE 8000
ENTRYPOINT ["apranova"]
CMD ["serve", "--host", "0.0.0.0", "--no-background"]
