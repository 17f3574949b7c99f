# jobcast's one image: `jobcast gateway`, `jobcast worker` or `jobcast serve` (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY messaging ./messaging
COPY ledger ./ledger
COPY producer ./producer
COPY consumer ./consumer
COPY query ./query
COPY client ./client
COPY observability ./observability
COPY jobcast ./jobcast
RUN pip install '.[otel]' && useradd --system --uid 10001 jobcast

USER jobcast
# In a container the HTTP ports must listen beyond loopback; logs are JSON (no terminal).
ENV JOBCAST_HOST=0.0.0.0 JOBCAST_LOG_FORMAT=json
EXPOSE 8000 8001
ENTRYPOINT ["jobcast"]
CMD ["gateway"]
