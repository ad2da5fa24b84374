# Production image: slim, non-root, no build tools at run time.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY adapters adapters
COPY policies policies
COPY config config
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/xinyi --create-home xinyi
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Policies and example configuration are installed under /usr/local/share/xinyi-gateway.
USER xinyi
WORKDIR /var/lib/xinyi
ENV XINYI_HOST=0.0.0.0 \
    XINYI_PORT=8080 \
    XINYI_STATE_DIR=/var/lib/xinyi
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
ENTRYPOINT ["xinyi-gateway"]
CMD ["serve", "--config", "/usr/local/share/xinyi-gateway/config/gateway.yaml"]
