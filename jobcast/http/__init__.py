"""What every jobcast HTTP server adds to FastAPI and uvicorn: limits on bodies, heads and
connections, 422 answers that echo little, and domain errors mapped to status codes.

The routes themselves live with the side they serve (producer/http.py, query/http.py,
query's SSE stream, observability/probes.py); these are the process's HTTP edge around them.
"""
