# The complaints engine's image: the worker by default; the same image runs the codec server
# (`python -m starter codec-server ...`) and the one-shot `python worker.py --ensure-search-attributes`.
#
#   docker build -t complaints-engine:0.1.0 .
#
# Top-level rather than under deploy/: the build context has to be the repository root (pyproject.toml,
# the packages, policies/, worker.py), and `docker build .`, registries' build triggers and
# deploy/compose all find it there without a -f.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid/gid: Kubernetes' runAsUser/fsGroup and secret file modes can name it.
RUN groupadd --system --gid 10001 complaints \
 && useradd --system --uid 10001 --gid complaints --home-dir /app --no-create-home --shell /usr/sbin/nologin complaints

WORKDIR /app

# Dependencies first (cached while only the code changes): the project's own metadata, installed
# without any extra (no test, no screenshots).
COPY pyproject.toml ./
COPY domain/ domain/
COPY activities/ activities/
COPY workflows/ workflows/
COPY starter/ starter/
COPY localstack/ localstack/
COPY worker.py ./
RUN pip install . && rm -rf build *.egg-info

# domain/policy.py reads the policies from ../policies next to the domain package, so the code runs
# from /app (the script's directory is first on sys.path) and policies/ sits beside it.
COPY policies/ policies/
RUN python -m compileall -q /app \
 && python -c "from domain.policy import available_policies as a, load_policy as l; assert [l(p) for p in a()], 'no policies'"

USER 10001:10001

# The product's counters (COMPLAINTS_METRICS_PORT), the SDK's runtime metrics (that port + 1), the codec server.
EXPOSE 9464 9465 8888

# worker.py stops polling on SIGTERM and lets its running activities finish.
STOPSIGNAL SIGTERM
CMD ["python", "worker.py"]
