# Images for docker-compose.yaml: `airflow` (api-server, scheduler, dag-processor, triggerer,
# Celery workers) and `webapp` (gunicorn). Label Studio runs from its own official image.
#
# GPU workers: build with a CUDA build of torch, e.g.
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 airflow-worker-gpu
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS airflow
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
USER airflow
COPY --chown=airflow:root requirements.txt /opt/airflow/requirements.txt
# torch first from the chosen index (CPU or CUDA), then the pinned rest.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==2.13.0" \
 && pip install --no-cache-dir -r /opt/airflow/requirements.txt
ENV PYTHONPATH=/opt/airflow HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins

FROM python:3.11-slim AS webapp
RUN useradd --create-home app
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install --no-cache-dir -r requirements.txt
COPY include include
COPY webapp webapp
USER app
ENV PYTHONPATH=/app
EXPOSE 5000
CMD ["gunicorn", "-c", "webapp/gunicorn.conf.py", "--bind", "0.0.0.0:5000", "webapp.wsgi:app"]
