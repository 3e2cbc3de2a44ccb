# One image for every service (worker, beat, sandbox, web). Configured by environment.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sharer ./sharer
COPY tasks ./tasks
RUN pip install --no-cache-dir .
COPY config ./config
COPY examples ./examples
RUN useradd --create-home sharer && mkdir -p /app/var && chown sharer /app/var
USER sharer
ENV SHARER_CONFIG=/app/config/sharer.toml
CMD ["celery", "-A", "tasks", "worker", "--loglevel=INFO"]
