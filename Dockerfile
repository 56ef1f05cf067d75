# One image for the API and the CPU workers. GPU workers build with
# --build-arg EXTRAS=gpu (pulls tensorflow[and-cuda]).
FROM python:3.11-slim
ARG EXTRAS=dashboard
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
COPY examples ./examples
RUN pip install --no-cache-dir ".[${EXTRAS}]"
EXPOSE 8000
CMD ["sweeps", "serve", "--host", "0.0.0.0", "--workers", "0"]
