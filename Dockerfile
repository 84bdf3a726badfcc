# smswatch exporter image: `docker build -t smswatch .`
# Build stage: build the wheel from the source tree.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the wheel and its dependencies, run as an unprivileged user.
FROM python:3.11.11-slim-bookworm
# Pango and HarfBuzz render the PDF compliance reports; Noto CJK draws their Chinese text.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0=1.50.12+ds-1 libpangoft2-1.0-0=1.50.12+ds-1 \
        libharfbuzz-subset0=6.0.0+dfsg-3 fonts-noto-cjk=1:20220127+repack1-1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/smswatch --create-home smswatch
COPY examples/simulator.yaml /etc/smswatch/config.yaml
USER 10001:10001
WORKDIR /var/lib/smswatch
EXPOSE 8479
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8479/healthz', timeout=4)"]
ENTRYPOINT ["smswatch"]
CMD ["run", "--config.file", "/etc/smswatch/config.yaml", "--state.path", "/var/lib/smswatch/state.sqlite"]
