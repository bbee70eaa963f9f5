# The web server and the worker share one image.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# WordNet: the routing model's sense of English words (optional; see contact/lexicon.py).
RUN apt-get update && apt-get install -y --no-install-recommends wordnet-base \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY contact ./contact
COPY channels ./channels
COPY ivr ./ivr
COPY kiosk ./kiosk
COPY agent_ui ./agent_ui
RUN pip install . && useradd --system --home /app contact && mkdir -p /app/var && chown contact /app/var
USER contact
EXPOSE 8000
CMD ["contact", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
