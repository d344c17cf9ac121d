# Slim runtime image: the models ship inside the Python wheels, nothing is downloaded at run time.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY voice_agent voice_agent
COPY media media
COPY routing routing
COPY transcripts transcripts
COPY storage storage
RUN pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 agent
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VOICE_AGENT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
RUN mkdir /data && chown agent /data
USER agent
WORKDIR /home/agent
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["voice-agent", "serve", "--host", "0.0.0.0", "--port", "8000"]
