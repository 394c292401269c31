# The tuner operator image: Kopf handlers plus the tuner library, run as a non-root user.
# Build from the repository root:  docker build -t tuner-operator:0.1.0 .  (docs/kubernetes.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tuner ./tuner
RUN pip install '.[kubernetes,slack]' \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin tuner
COPY rules ./rules
COPY operators ./operators

# The chart mounts a writable emptyDir here (rule files, secret files, audit stores).
ENV TUNER_STATE_DIR=/var/lib/tuner \
    TUNER_DEFAULT_RULES=/app/rules/default.yaml
USER 10001:10001
EXPOSE 8780
ENTRYPOINT ["python", "-m", "operators.tuner_operator"]
